"""Build records: what a `make figures` cost, measured by the build itself and kept as benchmark files.

``make figures`` ends by writing ``results/<preset>/build_record.json`` (:func:`build_record`): the wall
time of that invocation, whether it started from no results (a clean build), the jobs it ran with their
summed job time (from the rules' ``benchmark:`` files written during it), the CPU, the numeric profile and
the code version. ``make record-build`` copies it into ``benchmarks/records/`` (committed): the build-time
history lives there, one file per measured build, never in the docs. The README shows one line, the
latest clean build of each preset, as a generated block (:func:`render_readme`) that a test keeps equal to
what the records give.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from .. import numerics
from ..atomic import write_bytes
from ..results import code_version

BEGIN, END = "<!-- generated:build-time (make record-build; python -m grokking records) -->", "<!-- /generated -->"
BLOCK = re.compile(re.escape(BEGIN) + r"\n(?P<content>.*?)" + re.escape(END), re.S)


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


def readme_block(text: str) -> str:
    match = BLOCK.search(text)
    if match is None:
        raise ValueError(f"the README has no generated build-time block ({BEGIN} ... {END})")
    return match["content"]


def update_readme(readme, records_dir) -> bool:
    """Rewrite the README's block from the records; True when it changed."""
    text = Path(readme).read_text()
    readme_block(text)
    new = BLOCK.sub(lambda m: f"{BEGIN}\n{render_readme(load(records_dir))}{END}", text)
    if new != text:
        write_bytes(readme, new.encode())
    return new != text
