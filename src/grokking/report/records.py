"""Build records: what a `make figures` cost, measured by the build itself and kept as benchmark files.

``make figures`` ends by writing ``results/<preset>/build_record.json`` (:func:`build_record`): the wall
time of that invocation, whether it started from no results (a clean build), the jobs it ran with their
summed job time (from the rules' ``benchmark:`` files written during it), the CPU, the numeric profile, the
code version and every claim's value (``claims-check --against`` compares another build with it). ``make
record-build`` copies it into ``benchmarks/records/`` (committed): the build-time history lives there, one
file per measured build, never in the docs. The README shows one line, the
latest clean build of each preset, as a generated block (:func:`render_readme`) that a test keeps equal to
what the records give.

The same records hold the benchmarks' measurements (``kind: "benchmark"``, one file per measurement run:
the script, CPU or device, code version, date, command and the numbers as ``rows`` of named fields, with an
optional ``summary`` of single values and a ``note``; ``date_basis`` says where ``started`` came from when the
run's own date is not known). A document shows one as a generated block
``<!-- generated:record NAME -->`` ... ``<!-- /generated -->``, the Markdown table that :func:`render_record`
makes of ``benchmarks/records/NAME.json``. ``python -m grokking records`` rewrites every block of both kinds
in README.md and benchmarks/README.md (:func:`update_doc`); ``--check`` lists the stale ones
(:func:`stale_blocks`). A measured number is typed into no document: it is a record, rendered.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from .. import numerics
from ..atomic import write_bytes
from ..results import code_version
from .verdicts import claim_values

BEGIN, END = "<!-- generated:build-time (make record-build; python -m grokking records) -->", "<!-- /generated -->"
RECORD_BEGIN = "<!-- generated:record {name} -->"
# The kinds of block: the build-time line and the cost plan's headline (README.md), and a record's table (``arg`` is
# the record's name).
# Markers stand on lines of their own, so that a marker quoted in the prose is not a block.
BLOCKS = re.compile(
    r"^<!-- generated:(?P<kind>build-time|cost-plan|record)(?P<arg>[^\n]*?) -->\n(?P<content>.*?)^"
    + re.escape(END)
    + "$",
    re.S | re.M,
)


def cpu_identity() -> dict:
    """The CPU as ``lscpu`` names it: model name, vendor, family, model, and its vector extensions."""
    fields, flags = {}, set()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, _, value = (s.strip() for s in line.partition(":"))
                if key in ("model name", "vendor_id", "cpu family", "model") and key not in fields:
                    fields[key] = value
                elif key == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return {
        "model_name": fields.get("model name", numerics.cpu_model()),
        "vendor": fields.get("vendor_id", ""),
        "family": fields.get("cpu family", ""),
        "model": fields.get("model", ""),
        "isa": [f for f in ("avx2", "fma", "avx512f") if f in flags],
    }


def job_times(benchmarks_dir, since: float, until: float) -> dict:
    """Jobs whose ``benchmark:`` file was written between ``since`` and ``until`` (epoch seconds), per rule:
    count and summed seconds (the first column of Snakemake's benchmark TSV)."""
    per_rule: dict = {}
    for path in sorted(Path(benchmarks_dir).rglob("*.tsv")):
        if not since <= path.stat().st_mtime <= until:
            continue
        rows = path.read_text().splitlines()[1:]
        seconds = sum(float(r.split("\t")[0]) for r in rows if r.strip())
        rule = path.relative_to(benchmarks_dir).parts[0] if path.parent != Path(benchmarks_dir) else path.stem
        entry = per_rule.setdefault(rule, {"jobs": 0, "seconds": 0.0})
        entry["jobs"] += 1
        entry["seconds"] = round(entry["seconds"] + seconds, 2)
    return per_rule


def build_record(
    results_root, preset: str, start: float, end: float, clean: bool, cores: int, profile: str, command: str
) -> dict:
    """The record of one `make figures` invocation (see the module's docstring)."""
    rules = job_times(Path(results_root) / "benchmarks", start, end)
    claims = Path(results_root) / "claims.json"
    return {
        "kind": "build",
        "preset": preset,
        "clean": bool(clean),
        "command": command,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start)),
        "wall_minutes": round((end - start) / 60, 1),
        "job_minutes": round(sum(r["seconds"] for r in rules.values()) / 60, 1),
        "jobs_timed": sum(r["jobs"] for r in rules.values()),
        "rules": rules,
        "cores": cores,
        "numerics": profile,
        "cpu": cpu_identity(),
        "code_version": code_version(),
        # every claim's value, so that a later build can be compared with this one (claims-check --against)
        "claims": claim_values(json.loads(claims.read_text())) if claims.exists() else {},
    }


def keep(record_path, records_dir) -> Path:
    """Copy a build record into ``records_dir`` under a name that says what it is (preset, start)."""
    record = json.loads(Path(record_path).read_text())
    stamp = record["started"].replace(":", "").replace("-", "")
    out = Path(records_dir) / f"{record['kind']}-{record['preset']}-{stamp}.json"
    write_bytes(out, Path(record_path).read_bytes())
    return out


def load(records_dir) -> list[dict]:
    """Every record of ``records_dir``, oldest first."""
    records = [json.loads(p.read_text()) for p in sorted(Path(records_dir).glob("*.json"))]
    return sorted(records, key=lambda r: r["started"])


def latest_clean_builds(records: list[dict]) -> dict:
    """Preset -> its latest clean build."""
    return {r["preset"]: r for r in records if r.get("kind") == "build" and r.get("clean")}


def describe_cpu(cpu: dict) -> str:
    isa = "AVX-512" if "avx512f" in cpu["isa"] else "AVX2" if "avx2" in cpu["isa"] else "no AVX2"
    where = f", family {cpu['family']} model {cpu['model']}" if cpu.get("family") else ""
    return f"{cpu['model_name']}{where}, {isa}"


def render_readme(records: list[dict]) -> str:
    """The README's build-time lines: per preset, its latest clean build."""
    lines = []
    for preset, r in sorted(latest_clean_builds(records).items()):
        lines.append(
            f"- `{preset}` preset: `{r['command']}` took **{r['wall_minutes']} min** from a clean clone "
            f"({r['job_minutes']} job-minutes in {r['jobs_timed']} timed jobs) on {r['cores']} cores of an "
            f"{describe_cpu(r['cpu'])}, `{r['numerics']}` numerics, at {r['code_version']} "
            f"({r['started'][:10]})."
        )
    return "\n".join(lines or ["- no build recorded yet (`make figures`, then `make record-build`)"]) + "\n"


def render_cost_plan(records: list[dict]) -> str:
    """The README's cost line: the latest rehearsal's cost plan (``kind: "cost_plan"``)."""
    plans = [r for r in records if r.get("kind") == "cost_plan"]
    if not plans:
        return "- no rehearsal recorded yet (`make rehearse`, then `make record-rehearsal`)\n"
    r = plans[-1]
    return (
        f"- the whole `{r['rehearses']}` preset ({r['jobs']} training and pruning jobs): about "
        f"**{r['cpu_hours']:.3g} CPU-hours** on {r['cores']} cores of an {describe_cpu(r['cpu'])}, "
        f"about **{r['gpu_hours']:.3g} GPU-hours** on an H100 (extrapolated from Fig 3's measured rate); peak host "
        f"memory of one job {r['max_rss_gib']:.3g} GiB, largest stack on a GPU {r['gpu_gib']:.3g} GiB; measured by "
        f"`make rehearse` in {r['wall_minutes']} min at {r['code_version']} ({r['started'][:10]}).\n"
    )


def readme_block(text: str) -> str:
    """The content of the README's build-time block."""
    for match in BLOCKS.finditer(text):
        if match["kind"] == "build-time":
            return match["content"]
    raise ValueError(f"the README has no generated build-time block ({BEGIN} ... {END})")


def _cell(value) -> str:
    """One value as a table cell: numbers as written in the record, a range ``[lo, hi]`` of a ``*_range``
    field is ``lo–hi``, other lists are joined with " / ", a dict is ``key value, ...``, None is "–"."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return " / ".join(_cell(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k} {_cell(v)}" for k, v in value.items())
    return str(value).replace("|", "\\|").replace("\n", " ")


def _value(key: str, value) -> str:
    if key.endswith("_range") and isinstance(value, (list, tuple)) and len(value) == 2:
        return f"{_cell(value[0])}–{_cell(value[1])}"
    return _cell(value)


def describe_where(record: dict) -> str:
    """Where a benchmark ran, as its record says: the device (a GPU), else the CPU (model, ISA, cores), and
    the threads and software where given."""
    parts = []
    device, cpu = record.get("device"), record.get("cpu")
    if isinstance(device, dict):
        parts.append(", ".join(str(device[k]) for k in ("name", "precision") if device.get(k)))
    elif cpu:
        isa = [{"avx512f": "AVX-512", "avx2": "AVX2"}.get(f, f) for f in cpu.get("isa", []) if f != "fma"]
        bits = [cpu.get("model_name") or "CPU model not recorded", *isa[-1:]]
        if cpu.get("cores"):
            bits.append(f"{cpu['cores']} cores")
        parts.append(", ".join(bits))
    if record.get("threads"):
        parts.append(f"{record['threads']} thread{'s' if record['threads'] != 1 else ''}")
    if record.get("software"):
        parts.append(record["software"])
    return "; ".join(parts)


def render_record(record: dict, name: str = "") -> str:
    """A benchmark record as Markdown: a caption line (benchmark, CPU/device, code version, date, command),
    the table of its ``rows`` (columns: every field, in the order they first appear), its ``summary`` as a
    list and its ``note``."""
    code = f"code `{record['code_version']}`" if record.get("code_version") else "code version not recorded"
    if record.get("base_sha"):  # a before/after comparison (ab_compare.py): the base it was measured against
        code += f" against base `{record['base_sha']}`"
    date = record["started"][:10] + (f" ({record['date_basis']})" if record.get("date_basis") else "")
    caption = f"**{record['benchmark']}** on {describe_where(record)} · {code} · {date}"
    if record.get("command"):
        caption += f" · `{record['command']}`"
    if name:
        caption += f" (`benchmarks/records/{name}.json`)"
    lines = [caption, ""]
    rows = record.get("rows", [])
    columns = list(dict.fromkeys(k for row in rows for k in row))
    if columns:
        lines.append("| " + " | ".join(columns) + " |")
        lines.append("|" + "---|" * len(columns))
        lines += ["| " + " | ".join(_value(c, row.get(c)) for c in columns) + " |" for row in rows]
    if record.get("summary"):
        lines += [""] + [f"- {key}: {_value(key, value)}" for key, value in record["summary"].items()]
    if record.get("note"):
        lines += ["", f"*Note:* {record['note']}"]
    return "\n".join(lines) + "\n"


def block_content(kind: str, arg: str, records_dir) -> str:
    """What a block of ``kind`` (``build-time`` or ``record``, ``arg`` its record's name) holds now."""
    if kind == "build-time":
        return render_readme(load(records_dir))
    if kind == "cost-plan":
        return render_cost_plan(load(records_dir))
    name = arg.strip()
    path = Path(records_dir) / f"{name}.json"
    if not path.exists():
        raise ValueError(f"a generated block shows the record {name!r}, but {path} does not exist")
    return render_record(json.loads(path.read_text()), name)


def render_doc(text: str, records_dir) -> str:
    """``text`` with every generated block rewritten from the records."""
    if BLOCKS.search(text) is None:
        raise ValueError(f"the document has no generated block ({BEGIN} or {RECORD_BEGIN} ... {END})")

    def fill(m):
        return f"<!-- generated:{m['kind']}{m['arg']} -->\n{block_content(m['kind'], m['arg'], records_dir)}{END}"

    return BLOCKS.sub(fill, text)


def stale_blocks(doc, records_dir) -> list[str]:
    """The blocks of ``doc`` whose content differs from their rendering (``build-time`` or the record's name)."""
    text = Path(doc).read_text()
    if BLOCKS.search(text) is None:
        raise ValueError(f"{doc} has no generated block ({BEGIN} or {RECORD_BEGIN} ... {END})")
    return [
        m["arg"].strip() if m["kind"] == "record" else m["kind"]
        for m in BLOCKS.finditer(text)
        if m["content"] != block_content(m["kind"], m["arg"], records_dir)
    ]


def update_doc(doc, records_dir) -> bool:
    """Rewrite the generated blocks of ``doc`` from the records; True when it changed."""
    text = Path(doc).read_text()
    try:
        new = render_doc(text, records_dir)
    except ValueError as e:
        raise ValueError(f"{doc}: {e}") from None
    if new != text:
        write_bytes(doc, new.encode())
    return new != text
