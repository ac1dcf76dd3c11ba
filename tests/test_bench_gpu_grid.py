"""benchmarks/bench_gpu_grid.py, the GPU timing of a preset's grids, tried on the CPU: it finds each chunk's
dataset as the DAG names it (the image grids too), caps the steps and runs in the deterministic mode."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.checkout  # needs the checkout: left out of make test-wheel

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_gpu_grid.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_gpu_grid", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(*args, cwd=ROOT):
    done = subprocess.run([sys.executable, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


def test_each_chunk_reads_the_dataset_file_the_dag_makes(tmp_path):
    data = _bench()._data
    assert data(tmp_path, {"dataset": "modular", "operation": "mul", "p": 97}) == tmp_path / "mul_p97.npz"
    # an image grid's stack still carries the modular keys (operation, p): they must not name its file
    assert data(tmp_path, {"dataset": "mnist", "operation": "add", "p": 97}) == tmp_path / "mnist.npz"
    assert data(tmp_path, {"dataset": "digits", "operation": "add", "p": 59}) == tmp_path / "digits.npz"


def test_an_image_grid_is_planned_and_run(tmp_path):
    plan = tmp_path / "plan.json"
    configs = [ROOT / "config" / "config.yaml", ROOT / "config" / "smoke.yaml"]
    _run(SCRIPT, "plan", "--configfile", *configs, "--grids", "images_wd", "--out", plan)
    chunks = json.loads(plan.read_text())["chunks"]
    first = sorted(chunks)[0]
    assert chunks[first]["stack"]["dataset"] == "digits"
    data = tmp_path / "data"
    _run("-m", "grokking", "image-dataset", "--name", "digits", "--train-pool", "200", "--out", data / "digits.npz")
    out = tmp_path / "run.json"
    _run(
        SCRIPT,
        "run",
        "--plan",
        plan,
        "--data-dir",
        data,
        "--out",
        out,
        "--device",
        "cpu",
        "--only",
        first,
        "--steps",
        "3",
        "--check",
        "--deterministic",
        "--warmup-steps",
        "2",
        "--chunks-dir",
        tmp_path / "chunks",
    )
    got = json.loads(out.read_text())
    assert got["chunks_done"] == 1 and got["cells_done"] == len(chunks[first]["cells"])
    assert [row["steps"] for row in got["chunks"]] == [3] and got["check"]["steps"] == 3
    assert got["deterministic"] is True
    assert got["warmup_steps"] == 2 and (tmp_path / "chunks" / "warmup.npz").exists()  # untimed, not a chunk row
    assert got["check"]["max_rel_diff_weights"] == 0.0  # CPU against CPU
