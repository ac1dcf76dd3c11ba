"""Verdicts with their noise: a claim's margin to its threshold, the spread of its value over seeds, and
PASS, FAIL or UNRESOLVED.

A claim's value comes from one training run per model (one seed). Training is chaotic, so a value
near its threshold can land on either side with another seed, or with another CPU's rounding. The
robustness study (rule ``robustness``) evaluates every claim on the preset's own results and on
replicates trained with other model seeds; from those values each claim gets

* ``margin``: how far the value lies on the passing side of the threshold (negative: the failing side),
  for numeric thresholds; categorical claims (a phase name, ``==``) have none;
* ``noise``: the standard deviation of the value over the seeds (numeric claims);
* ``holds``: for how many of the ``seeds`` the claim holds.

The verdict is PASS or FAIL by the preset's own value, UNRESOLVED when the margin lies within the noise
(numeric; seeds that all give the same value have no noise) or when the seeds disagree (categorical).
Thresholds are never moved. A claim is *fragile* when its verdict rests on one grid cell or its margin
is within its noise; :func:`fragility` says why and what would settle it.
"""

from __future__ import annotations

import math

import numpy as np

PASS, FAIL, UNRESOLVED = "PASS", "FAIL", "UNRESOLVED"


def combine(seeds: list[dict]) -> dict:
    """The robustness study from its seeds' ``claim-values`` documents (the build's first): per claim its
    values and outcomes in seed order."""
    claims = {}
    for seed in seeds:
        for row in seed["claims"]:
            entry = claims.setdefault(row["id"], {"values": [], "holds": []})
            entry["values"].append(row["value"])
            entry["holds"].append(bool(row["passed"]))
    return {"seed_shifts": [s["seed_shift"] for s in seeds], "seeds": len(seeds), "claims": claims}


def margin(value, op: str, threshold) -> float | None:
    """Distance of ``value`` from ``threshold`` on the passing side (negative on the failing side);
    None for categorical claims and values that are not numbers."""
    if op == "==" or not _is_number(value) or not _is_number(threshold):
        return None
    diff = float(value) - float(threshold)
    return (diff if op in (">", ">=") else -diff) + 0.0  # + 0.0: no negative zero


def _is_number(x) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(float(x))


def with_noise(row: dict, values: list | None = None, holds: list | None = None) -> dict:
    """``row`` (a claims row: value, op, threshold, passed) with margin, noise, seed counts and verdict.
    ``values`` and ``holds`` are the claim's value and outcome per seed of the robustness study (the
    preset's own result first); without them the noise is unknown and the verdict is PASS or FAIL."""
    out = dict(row)
    out["margin"] = margin(row["value"], row["op"], row["threshold"])
    out["noise"] = None
    out["verdict"] = PASS if row["passed"] else FAIL
    if holds:
        out["holds"], out["seeds"] = int(sum(holds)), len(holds)
        numbers = [float(v) for v in values or [] if _is_number(v)]
        if out["margin"] is not None and len(numbers) >= 2:
            out["noise"] = float(np.std(numbers, ddof=1))
            out["mean_margin"] = margin(float(np.mean(numbers)), row["op"], row["threshold"])
            if _within(out["margin"], out["noise"]):
                out["verdict"] = UNRESOLVED
        elif 0 < out["holds"] < out["seeds"]:
            out["verdict"] = UNRESOLVED
    return out


def _within(margin: float, noise: float) -> bool:
    """Whether a margin lies within the noise (seeds that all give the same value have no noise)."""
    return noise > 0 and abs(margin) <= noise


SETTLE = {
    "grid cell": "a finer grid (as the paper preset's) or more seeds per cell would settle it",
    "example": "more examples would settle it",
}


def fragility(row: dict, step: float | None, unit: str = "grid cell") -> str:
    """Why a claim's verdict is fragile and what would settle it ('' when it is not). ``step`` is the
    smallest change of the claim's value, one ``unit`` (1 for a count of grid cells, 1/4 for a fraction
    of four examples), or None."""
    reasons = []
    m = row.get("margin")
    if step is not None and m is not None and abs(m) <= step:
        reasons.append(f"its verdict rests on a single {unit}: {SETTLE[unit]}")
    noise = row.get("noise")
    if m is not None and noise is not None and _within(m, noise):
        seeds, mean = row.get("seeds", 0), row.get("mean_margin") or 0.0
        text = f"its margin ({m:+.3g}) is within the seed-to-seed noise ({noise:.3g})"
        if mean and seeds and abs(mean) >= 2 * noise / math.sqrt(seeds):
            side = "passing" if mean > 0 else "failing"
            text += f"; the mean over the {seeds} seeds ({mean:+.3g}) lies two standard errors on the {side} side"
        elif mean:
            text += (
                f": about {math.ceil((2 * noise / abs(mean)) ** 2)} seeds would put the mean two standard errors away"
            )
        else:
            text += ": the paper's size may separate it"
        reasons.append(text)
    if m is None and row.get("seeds") and 0 < row.get("holds", 0) < row["seeds"]:
        reasons.append(
            f"it holds for {row['holds']} of {row['seeds']} seeds: more seeds, or the paper's size, would settle it"
        )
    return "; ".join(reasons)


def counts(rows: list[dict]) -> dict:
    """How many rows have each verdict."""
    return {v: sum(r["verdict"] == v for r in rows) for v in (PASS, FAIL, UNRESOLVED)}


def _value(x) -> str:
    if x is None:
        return "none"
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def summary_text(doc: dict, report: str = "") -> str:
    """The claims summary printed at the end of a build: how many hold, and each claim that does not
    (FAIL or UNRESOLVED) with its value, threshold and, where measured, noise and seed count."""
    rows = doc["claims"]
    n = counts(rows)
    head = f"Claims ({doc.get('preset', '')} preset): {n[PASS]} of {len(rows)} hold"
    head += f", {n[FAIL]} FAIL, {n[UNRESOLVED]} UNRESOLVED"
    if not doc.get("robustness"):
        head += " (noise not measured: see README, 'Verdicts and their noise')"
    lines = ([doc["note"]] if doc.get("note") else []) + [head + (f"; report: {report}" if report else "")]
    for r in rows:
        if r["verdict"] == PASS:
            continue
        line = f"  {r['verdict']:<10} {r['id']} ({r['figure']}): {_value(r['value'])}, needs {r['op']} "
        line += _value(r["threshold"])
        if r.get("noise") is not None:
            line += f", noise {r['noise']:.3g}"
        if r.get("seeds"):
            line += f", holds for {r['holds']} of {r['seeds']} seeds"
        if r.get("known_failure"):
            line += " (known in this preset)"
        if r.get("error"):
            line += f" [{r['error']}]"
        lines.append(line)
    return "\n".join(lines)


def claim_values(doc: dict) -> dict:
    """Claim id -> value, from a claims report (``claims.json``) or a build record (its ``claims``)."""
    if "claims" not in doc:
        raise ValueError("neither a claims report nor a build record with claim values (no 'claims' key)")
    claims = doc["claims"]
    return claims if isinstance(claims, dict) else {r["id"]: r["value"] for r in claims}


def compare_values(ours: dict, theirs: dict) -> list[str]:
    """The claims whose values differ between two builds (exact equality: the same config on the same numeric
    profile gives the same bits), one line each; a claim that only one of them has is named too."""
    lines = []
    for cid in sorted(set(ours) | set(theirs)):
        if cid not in theirs:
            lines.append(f"{cid}: {_value(ours[cid])} here, not in the other")
        elif cid not in ours:
            lines.append(f"{cid}: not here, {_value(theirs[cid])} in the other")
        elif ours[cid] != theirs[cid] and not (_is_nan(ours[cid]) and _is_nan(theirs[cid])):
            lines.append(f"{cid}: {ours[cid]!r} here, {theirs[cid]!r} in the other")
    return lines


def _is_nan(x) -> bool:
    return isinstance(x, float) and math.isnan(x)
