"""The claims report: the paper's claims turned into measurable checks on the regenerated results.

The claims are data, ``grokking/claims.yaml``: each names the figure it supports, says in words what
the paper claims and what is measured, and compares the value of one measure (:mod:`.measures`, with
the claim's arguments) with a threshold. What a claim reads (``runs``, ``grids``, ``pruning``,
``width_sweep``) follows from its measure's arguments, so each input is named once, in that file.

``evaluate`` runs every claim on a :class:`Results` view of ``results/<preset>/`` and returns one row
per claim: value, threshold, pass or fail. A claim whose input is missing fails with the reason, so a
report never passes by leaving something out. Thresholds can be overridden per claim id (config
``claims.thresholds``).
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field
from pathlib import Path

from ..config import CLAIMS_PATH
from . import verdicts
from .claims_render import to_html, to_markdown
from .measure_registry import ArgumentError, arguments
from .measures import MEASURES, grid_spec
from .results_view import Results

__all__ = [
    "CLAIMS",
    "CLAIMS_FILE",
    "OPS",
    "Claim",
    "ClaimsError",
    "Results",
    "evaluate",
    "load",
    "measure",
    "to_html",
    "to_markdown",
    "unexpected_failures",
]

OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq}

CLAIMS_FILE = CLAIMS_PATH
PACKAGE_DATA = ("claims.yaml",)  # CLAIMS_FILE, a code input of the jobs that run this module (codedeps)

REQUIRED = ("id", "figure", "claim", "metric", "measure", "op", "threshold")
OPTIONAL = ("args", "step", "unit", "known_failure")


class ClaimsError(ValueError):
    """A claims file, or a claim, that cannot be used: the message names the claim and the field."""


@dataclass(frozen=True)
class Claim:
    id: str
    figure: str
    claim: str  # what the paper says
    metric: str  # what is measured, in words
    op: str
    threshold: float | str
    measure: str  # the measure's name (measures.MEASURES) ...
    args: tuple = ()  # ... and its arguments, as (name, value) pairs
    step: float | None = None  # smallest change of the value (1: a count of grid cells), for fragility
    unit: str = "grid cell"  # what one step is (verdicts.SETTLE)
    known_failure: str = ""  # a pointer to the presets that list it as failing (their config has the reason)
    # The inputs it reads, so that the workflow can list them: from the measure's arguments.
    runs: tuple = field(init=False)
    grids: tuple = field(init=False)
    pruning: tuple = field(init=False)
    width_sweep: bool = field(init=False)
    kwargs: dict = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self):
        if self.op not in OPS:
            raise ClaimsError(f"claim '{self.id}', field 'op': unknown comparison {self.op!r}; accepted: {list(OPS)}")
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, int | float | str):
            raise ClaimsError(f"claim '{self.id}', field 'threshold': expected a number or a phase name")
        if isinstance(self.threshold, str) and self.op != "==":
            raise ClaimsError(f"claim '{self.id}', field 'threshold': a name is compared with '==' only")
        if self.measure not in MEASURES:
            raise ClaimsError(
                f"claim '{self.id}', field 'measure': unknown measure {self.measure!r}; accepted: {sorted(MEASURES)}"
            )
        try:
            kwargs, inputs = arguments(MEASURES[self.measure], dict(self.args))
        except ArgumentError as err:
            raise ClaimsError(f"claim '{self.id}', field '{err.field}': {err}") from None
        object.__setattr__(self, "args", tuple(kwargs.items()))
        object.__setattr__(self, "kwargs", kwargs)
        for key, value in inputs.items():
            object.__setattr__(self, key, value)

    def value(self, results):
        """The claim's measure on ``results`` (a :class:`Results` view): a number or a phase name."""
        return MEASURES[self.measure](results, self.kwargs)


def load(path=CLAIMS_FILE) -> tuple[Claim, ...]:
    """The claims of a claims file (``claims:``, a list of mappings), in its order."""
    import yaml

    try:
        doc = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as err:
        raise ClaimsError(f"claims file {path}: not YAML: {err}") from None
    items = doc.get("claims") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise ClaimsError(f"claims file {path}: expected 'claims:', a list of claims")
    claims, seen = [], set()
    for i, item in enumerate(items):
        cid = item.get("id") if isinstance(item, dict) else None
        where = f"claims file {path}: claim '{cid}'" if isinstance(cid, str) else f"claims file {path}: claim #{i + 1}"
        if not isinstance(item, dict):
            raise ClaimsError(f"{where}: expected a mapping")
        missing = [k for k in REQUIRED if k not in item]
        unknown = [k for k in item if k not in REQUIRED + OPTIONAL]
        if missing or unknown:
            key = (missing or unknown)[0]
            what = "missing" if missing else f"unknown field; accepted: {list(REQUIRED + OPTIONAL)}"
            raise ClaimsError(f"{where}, field '{key}': {what}")
        for key in ("id", "figure", "claim", "metric", "measure", "unit", "known_failure"):
            if key in item and (not isinstance(item[key], str) or not item[key]):
                raise ClaimsError(f"{where}, field '{key}': expected a non-empty string")
        if cid in seen:
            raise ClaimsError(f"{where}, field 'id': the id is used twice")
        seen.add(cid)
        args = item.get("args") or {}
        if not isinstance(args, dict):
            raise ClaimsError(f"{where}, field 'args': expected a mapping of the measure's arguments")
        step = item.get("step")
        if step is not None and (isinstance(step, bool) or not isinstance(step, int | float) or step <= 0):
            raise ClaimsError(f"{where}, field 'step': expected a positive number")
        try:
            claims.append(Claim(**{**item, "args": tuple(args.items())}))
        except ClaimsError as err:
            raise ClaimsError(f"claims file {path}: {err}") from None
    return tuple(claims)


CLAIMS = load()


def evaluate(
    results: Results,
    claims=CLAIMS,
    thresholds: dict | None = None,
    known_failures: dict | None = None,
    robustness: dict | None = None,
) -> list[dict]:
    """One row per claim: id, figure, claim, metric, value, op, threshold, passed (and error if any;
    ``known_failure``: the preset's stated reason when the claim is listed as failing there), with its
    margin and verdict (:mod:`.verdicts`). ``robustness`` (the study's ``claims``: id -> values and
    outcomes per seed) adds the noise, the seed count and UNRESOLVED verdicts."""
    rows = []
    for c in claims:
        row = measure(results, c, (thresholds or {}).get(c.id, c.threshold))
        study = (robustness or {}).get(c.id) or {}
        row = verdicts.with_noise(row, study.get("values"), study.get("holds"))
        row["fragile"] = verdicts.fragility(row, c.step, c.unit)
        if c.id in (known_failures or {}):
            row["known_failure"] = known_failures[c.id]
        diverged = _diverged_models(results, c)
        if diverged:
            row["diverged"] = diverged
        rows.append(row)
    return rows


def measure(results: Results, c: Claim, threshold=None) -> dict:
    """A claim's value on ``results`` against its threshold: id, figure, claim, metric, value, op,
    threshold, passed (and error when it cannot be measured)."""
    threshold = c.threshold if threshold is None else threshold
    row = {
        "id": c.id,
        "figure": c.figure,
        "claim": c.claim,
        "metric": _metric_text(results, c),
        "op": c.op,
        "threshold": threshold,
        "value": None,
        "passed": False,
    }
    try:
        value = c.value(results)
    except (FileNotFoundError, KeyError, IndexError) as err:
        row["error"] = f"{type(err).__name__}: {err}"
    else:
        row["value"] = value
        if isinstance(value, float) and math.isnan(value):
            row["error"] = "not measurable (no qualifying point)"
        else:
            row["passed"] = bool(OPS[c.op](value, threshold))
    return row


def _diverged_models(results: Results, c: Claim) -> str:
    """Which models behind a claim diverged: they are in no phase, so phase counts leave them out."""
    notes = []
    for name in c.grids:
        try:
            at = results.grid(name).get("diverged_at_seeds")
        except (FileNotFoundError, KeyError):
            continue
        if at is not None and (at >= 0).any():
            notes.append(f"grid {name}: {int((at >= 0).sum())} of {at.size} models")
    for name in c.runs:
        try:
            step = results.run(name).summary.get("diverged_at")
        except FileNotFoundError:
            continue
        if step is not None:
            notes.append(f"run {name} at step {step}")
    return "; ".join(notes)


def _metric_text(results: Results, c: Claim) -> str:
    """The claim's metric, naming the dataset its first grid was trained on where it says ``{dataset}``
    and how that grid measured accuracy (in eval mode or with dropout on) where it says ``{measured}``."""
    if "{dataset}" not in c.metric and "{measured}" not in c.metric:
        return c.metric
    from ..data import dataset_title

    try:
        spec = grid_spec(results, c.grids[0])
        words = {
            "dataset": dataset_title(spec),
            "measured": "accuracy with dropout on" if spec.get("eval_dropout") else "accuracy in eval mode",
        }
    except (FileNotFoundError, KeyError):
        words = {"dataset": "(dataset unknown: grid missing)", "measured": "(grid missing)"}
    text = c.metric
    for key, word in words.items():
        text = text.replace("{" + key + "}", word)
    return text


def unexpected_failures(rows: list[dict]) -> list[str]:
    """Ids of the claims whose verdict is FAIL and that the preset does not list as known failures."""
    return [r["id"] for r in rows if r["verdict"] == verdicts.FAIL and "known_failure" not in r]
