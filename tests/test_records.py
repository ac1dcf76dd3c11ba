"""Build and benchmark records (src/grokking/report/records.py): a build measures itself, the README's
build-time line and the benchmark tables of benchmarks/README.md are generated from the records in
benchmarks/records/, and no measured number is typed into either document outside those blocks."""

from __future__ import annotations

import json
import os
import re

import pytest

from grokking.cli import main
from grokking.report import records

pytestmark = pytest.mark.checkout  # needs the checkout: left out of make test-wheel

DOCS = ("README.md", "benchmarks/README.md")


def test_the_readme_build_time_is_the_one_the_records_give(repo_root):
    readme = (repo_root / "README.md").read_text()
    assert records.readme_block(readme) == records.render_readme(records.load(repo_root / "benchmarks" / "records")), (
        "README.md's build-time block differs from benchmarks/records/: run `python -m grokking records`"
    )


@pytest.mark.parametrize("doc", DOCS)
def test_every_generated_block_is_what_its_record_gives(repo_root, doc):
    assert records.stale_blocks(repo_root / doc, repo_root / "benchmarks" / "records") == [], (
        f"{doc}: generated blocks differ from benchmarks/records/: run `python -m grokking records`"
    )


def test_every_benchmark_record_is_shown_and_says_where_it_came_from(repo_root):
    """Each benchmark record is in a block of benchmarks/README.md, and carries what a reader needs to weigh it."""
    text = (repo_root / "benchmarks" / "README.md").read_text()
    shown = {m["arg"].strip() for m in records.BLOCKS.finditer(text) if m["kind"] == "record"}
    for path in sorted((repo_root / "benchmarks" / "records").glob("*.json")):
        record = json.loads(path.read_text())
        if record["kind"] != "benchmark":
            continue
        assert path.stem in shown, f"{path.name} is shown in no block of benchmarks/README.md"
        assert {"benchmark", "started", "code_version", "command", "rows", "source"} <= set(record), path.name
        assert record["rows"] and (record.get("cpu") or record.get("device")), path.name


def _tsv(path, seconds, mtime):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("s\th:m:s\tmax_rss\tcpu_time\n" + "".join(f"{s}\t-\t1\t1\n" for s in seconds))
    os.utime(path, (mtime, mtime))


def test_a_build_record_counts_the_jobs_timed_during_the_build(tmp_path):
    bench = tmp_path / "benchmarks"
    start, end = 1_000_000.0, 1_000_000.0 + 1800
    _tsv(bench / "train_run" / "a.tsv", [60.0], start + 10)
    _tsv(bench / "train_run" / "b.tsv", [30.5], start + 20)
    _tsv(bench / "train_grid_chunk" / "g_0.tsv", [120.0], end)
    _tsv(bench / "train_run" / "old.tsv", [999.0], start - 1)  # made by an earlier build: not this one's
    _tsv(bench / "train_run" / "later.tsv", [999.0], end + 1)
    r = records.build_record(tmp_path, "quick", start, end, True, 2, "portable", "make figures")
    assert r["rules"] == {"train_run": {"jobs": 2, "seconds": 90.5}, "train_grid_chunk": {"jobs": 1, "seconds": 120.0}}
    assert (r["wall_minutes"], r["job_minutes"], r["jobs_timed"], r["clean"]) == (30.0, 3.5, 3, True)
    assert r["started"] == "1970-01-12T13:46:40Z" and r["cpu"]["model_name"]


def _record(preset, started, clean, minutes):
    return {
        "kind": "build",
        "preset": preset,
        "clean": clean,
        "command": "make figures",
        "started": started,
        "wall_minutes": minutes,
        "job_minutes": 2 * minutes,
        "jobs_timed": 7,
        "cores": 2,
        "numerics": "portable",
        "cpu": {"model_name": "Some CPU", "vendor": "V", "family": "6", "model": "85", "isa": ["avx2", "fma"]},
        "code_version": "abc123",
    }


def test_the_readme_shows_the_latest_clean_build_of_each_preset(tmp_path):
    assert records.render_readme([]).startswith("- no build recorded yet")
    for i, (preset, started, clean, minutes) in enumerate(
        [("quick", "2026-01-01T00:00:00Z", True, 50.0), ("quick", "2026-02-01T00:00:00Z", True, 40.0),
         ("quick", "2026-03-01T00:00:00Z", False, 1.0), ("smoke", "2026-01-05T00:00:00Z", True, 6.0)]
    ):  # fmt: skip
        (tmp_path / f"r{i}.json").write_text(json.dumps(_record(preset, started, clean, minutes)))
    lines = records.render_readme(records.load(tmp_path)).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("- `quick` preset: `make figures` took **40.0 min** from a clean clone")
    assert "Some CPU, family 6 model 85, AVX2" in lines[0] and "(2026-02-01)" in lines[0]
    assert lines[1].startswith("- `smoke` preset") and "**6.0 min**" in lines[1]


def test_records_keeps_a_record_and_check_fails_on_a_stale_readme(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n\n{records.BEGIN}\n- 1 min, typed by hand\n{records.END}\n\nmore\n")
    source = tmp_path / "build_record.json"
    source.write_text(json.dumps(_record("quick", "2026-02-01T10:20:30Z", True, 40.0)))
    store = tmp_path / "records"
    with pytest.raises(SystemExit) as stale:
        main(["records", "--docs", str(readme), "--records", str(store), "--add", str(source), "--check"])
    assert stale.value.code == 1
    assert [p.name for p in store.iterdir()] == ["build-quick-20260201T102030Z.json"]
    main(["records", "--docs", str(readme), "--records", str(store)])
    text = readme.read_text()
    assert "typed by hand" not in text and "**40.0 min**" in text and text.endswith("\n\nmore\n")
    with pytest.raises(SystemExit) as current:
        main(["records", "--docs", str(readme), "--records", str(store), "--check"])
    assert current.value.code == 0
    readme.write_text("no block here\n")
    with pytest.raises(ValueError, match="has no generated block"):
        main(["records", "--docs", str(readme), "--records", str(store)])


FIXTURE = {
    "kind": "benchmark",
    "benchmark": "bench_x.py",
    "started": "2026-11-22T15:38:39+00:00",
    "date_basis": "date of commit abc1234",
    "cpu": {"model_name": None, "isa": ["avx2", "fma"], "cores": 2},
    "threads": 2,
    "code_version": "abc1234",
    "command": "python benchmarks/bench_x.py --steps 20",
    "rows": [
        {"size": "paper", "K": 1, "seconds_per_model_step": 0.0379, "speedup_vs_reference": 2.06},
        {"size": "a|b", "K": 4, "speedup_vs_reference": None, "spread_range": [1.6, 2.1], "ok": True},
    ],
    "summary": {"total_wall_seconds": 69, "sanity": {"transformer": 1e-6, "deep_mlp": 0.0}},
    "note": "noisy",
    "source": "transcribed from benchmarks/README.md at abc1234",
}


def test_a_record_renders_as_a_captioned_table():
    assert records.render_record(FIXTURE, "bench_x-cpu") == (
        "**bench_x.py** on CPU model not recorded, AVX2, 2 cores; 2 threads · code `abc1234` · 2026-11-22 "
        "(date of commit abc1234) · `python benchmarks/bench_x.py --steps 20` "
        "(`benchmarks/records/bench_x-cpu.json`)\n"
        "\n"
        "| size | K | seconds_per_model_step | speedup_vs_reference | spread_range | ok |\n"
        "|---|---|---|---|---|---|\n"
        "| paper | 1 | 0.0379 | 2.06 | – | – |\n"
        "| a\\|b | 4 | – | – | 1.6–2.1 | yes |\n"
        "\n"
        "- total_wall_seconds: 69\n"
        "- sanity: transformer 1e-06, deep_mlp 0.0\n"
        "\n"
        "*Note:* noisy\n"
    )
    on_gpu = dict(FIXTURE, device={"name": "H100", "precision": "float32"}, threads=None, software="PyTorch 2.11",
                  code_version=None, base_sha="def5678", date_basis=None, command=None, rows=[{"K": 1}])  # fmt: skip
    del on_gpu["summary"], on_gpu["note"]
    assert records.render_record(on_gpu) == (
        "**bench_x.py** on H100, float32; PyTorch 2.11 · code version not recorded against base `def5678` · "
        "2026-11-22\n\n| K |\n|---|\n| 1 |\n"
    )


def test_records_renders_every_block_of_every_doc_and_check_names_the_stale_ones(tmp_path, capsys):
    store = tmp_path / "records"
    store.mkdir()
    (store / "bench_x-cpu.json").write_text(json.dumps(FIXTURE))
    doc = tmp_path / "bench.md"
    begin = records.RECORD_BEGIN.format(name="bench_x-cpu")
    doc.write_text(
        f"# B\n\nThe marker `{begin}` quoted in prose is no block.\n\n{begin}\n| 1 ms | typed |\n{records.END}\n\nend\n"
    )
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n\n{records.BEGIN}\n- old\n{records.END}\n")
    args = ["records", "--docs", str(readme), str(doc), "--records", str(store)]
    with pytest.raises(SystemExit) as stale:
        main([*args, "--check"])
    assert stale.value.code == 1
    err = capsys.readouterr().err
    assert f"{doc}: stale: bench_x-cpu" in err and f"{readme}: stale: build-time" in err
    main(args)
    text = doc.read_text()
    assert text == (
        f"# B\n\nThe marker `{begin}` quoted in prose is no block.\n\n{begin}\n"
        f"{records.render_record(FIXTURE, 'bench_x-cpu')}{records.END}\n\nend\n"
    )
    with pytest.raises(SystemExit) as current:
        main([*args, "--check"])
    assert current.value.code == 0
    doc.write_text(f"{records.RECORD_BEGIN.format(name='missing')}\n{records.END}\n")
    with pytest.raises(ValueError, match="'missing', but .*missing.json does not exist"):
        main(args)


# A measured-looking number: a time, a FLOP rate, a memory size in GiB or a percentage after a number or a
# range of numbers (1.6–2.1, 116 to 92, 1.78 / 1.50), a ratio (2.06×, 11×; 8×8 is a shape), a ± spread, or a
# fraction with three or more decimals (tests/test_decisions.py's heuristic for tables: 0.873, 1.000).
_NUMBER = r"(?<![\w.])\d[\d,]*(?:\.\d+)?"
_SPAN = _NUMBER + r"(?:\s*(?:–|-|to|/|\+)\s*" + _NUMBER + r")*"
_UNIT = r"\s?(?:ms|µs|s|sec|seconds?|min|minutes?|h|hours?|job-minutes|CPU-seconds|CPU-minutes|[GT]FLOP(?:/s)?|GiB|%)"
MEASURED = re.compile(
    _SPAN + r"(?:" + _UNIT + r"(?![\w/])|\s?×(?!\s?[\d(]))"
    r"|±\s?\d"
    r"|(?<![\w.])(?:0\.[1-9]\d{2,}|[1-9]\d*\.\d{3,})(?![\w.])"
)
# Settings that look like measurements, per document, each with what it is.
SETTINGS = {
    "README.md": {
        "120 min": "the SLURM profile's time request for a training job",
        "30 min": "the SLURM profile's default time",
        "120 s": "the MinJobAge the SLURM plugin needs",
        "300 s": "SLURM's default MinJobAge",
        "5 s": "the first status check that the SLURM test sets",
        "17 min": "the SLURM test's bound on its build",
        "90 %": "the paper's accuracy threshold (Table 2)",
    },
}


def typed_measurements(text: str, settings=()) -> list[str]:
    """The measured-looking numbers of a Markdown text outside its generated blocks (records, figure index),
    code blocks and code spans (commands and settings), less the ``settings`` it names."""
    text = records.BLOCKS.sub("", text)
    text = re.sub(r"<!-- figure-index:start -->.*?<!-- figure-index:end -->", "", text, flags=re.S)
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    text = re.sub(r"`[^`\n]*`", "", text)
    return [
        f"{line.strip()[:100]}: {m[0]!r}"
        for line in text.splitlines()
        for m in MEASURED.finditer(line)
        if m[0] not in settings
    ]


def test_the_heuristic_finds_typed_measurements_and_passes_settings():
    typed = (
        "| paper | 37.9 ms | 2.06× |\nrun at 31–77 GFLOP/s, about 60 % of it; 1.78 / 1.50 / 1.43×\n"
        "took 69 s, 15.3 job-minutes, 116 to 92 minutes, 4.2 GiB, ±15 %; new/base 0.898\n"
    )
    assert [t.rsplit(": ", 1)[1] for t in typed_measurements(typed)] == [
        "'37.9 ms'", "'2.06×'", "'31–77 GFLOP/s'", "'60 %'", "'1.78 / 1.50 / 1.43×'", "'69 s'",
        "'15.3 job-minutes'", "'116 to 92 minutes'", "'4.2 GiB'", "'±1'", "'0.898'",
    ]  # fmt: skip
    settings = (
        "p 97, N 500, α 0.5, `--steps 20`, lr 0.005, 8×8 digits, 2,261 cells × 2,000 steps, 100 steps, 4 MiB\n"
        "```bash\nbench --budget-s 600 # 9.5 min\n```\n<!-- generated:record x -->\n| 1.5 ms |\n<!-- /generated -->\n"
    )
    assert typed_measurements(settings) == []
    assert typed_measurements("a run below 90 %", {"90 %"}) == []


@pytest.mark.parametrize("doc", DOCS)
def test_no_measured_number_is_typed_outside_the_generated_blocks(repo_root, doc):
    """A measured number in these documents is a record, rendered (benchmarks/README.md, "Measurements are
    records, never typed"); the heuristic is :data:`MEASURED`, its exceptions :data:`SETTINGS`."""
    found = typed_measurements((repo_root / doc).read_text(), SETTINGS.get(doc, {}))
    assert not found, f"{doc}: measured numbers typed outside generated blocks (make them records):\n" + "\n".join(
        found
    )
