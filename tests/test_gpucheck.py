"""The GPU acceptance check (``python -m grokking gpu-check``, src/grokking/gpucheck/) without a GPU: what it does
where there is no CUDA, and its development mode (``--device cpu --tiny``: the parts at the smoke preset's sizes on
the CPU, the sync audit on the meta stand-in), whose verdicts must follow the parts' outcomes: a step broken on
purpose fails the sync audit and the check, naming the part and the fault; a part that cannot run leaves the check
INCOMPLETE; a resumed width job whose result differs from the uninterrupted run's fails the kill-and-resume part.
"""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest
import torch

from grokking.cli import main
from grokking.engine.adamw import AdamW
from grokking.gpucheck import audit, killresume, runner, smoke, syncaudit
from grokking.gpucheck.speed import largest_stacks
from grokking.results import write_npz

pytestmark = pytest.mark.checkout  # the check reads the preset from a checkout of the project (--repo)


def gpu_check(*args) -> int:
    with pytest.raises(SystemExit) as exit_:
        main(["gpu-check", *map(str, args)])
    return exit_.value.code


def tiny(out, *parts) -> tuple[int, dict, str]:
    """A development run of ``parts``: exit status, report.json, report.md."""
    code = gpu_check("--device", "cpu", "--tiny", "--out", out, "--parts", *parts)
    return code, json.loads((out / "report.json").read_text()), (out / "report.md").read_text()


def part(doc: dict, letter: str) -> dict:
    return next(p for p in doc["parts"] if p["letter"] == letter)


@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_without_cuda_it_says_so_exits_1_and_writes_nothing(tmp_path, monkeypatch, capsys, device):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check("--device", device, "--out", tmp_path / "report") == 1
    err = capsys.readouterr().err
    assert "no CUDA device is available" in err and "nothing was written" in err
    assert "--device cpu --tiny" in err  # and how to run the check itself without a GPU
    assert not (tmp_path / "report").exists()


def test_the_cpu_is_only_a_development_run(tmp_path, capsys):
    assert gpu_check("--device", "cpu", "--out", tmp_path / "report") == 2
    assert "add --tiny" in capsys.readouterr().err
    assert not (tmp_path / "report").exists()


def test_a_host_read_in_the_step_fails_the_sync_audit_and_the_check(tmp_path, monkeypatch):
    """AdamW reading a gradient on the host (``.item()``) in every step after the first: the sync audit fails,
    naming the fault, the check fails (exit 1), and the parts after it still run."""
    real = AdamW.step

    def step(self):
        if self.t >= 1:
            self.seen = [p.grad.abs().max().item() for p in self.params.values()]
        real(self)

    monkeypatch.setattr(AdamW, "step", step)
    two = ["mlp2 full batch, dropout", "transformer, 2 layers, dropout, CE"]  # of audit.CASES, and no other path
    monkeypatch.setattr(audit, "CASES", {name: audit.CASES[name] for name in two})
    monkeypatch.setattr(syncaudit, "_paths", lambda ctx, folder: {})
    code, doc, md = tiny(tmp_path / "r", "a", "b", "f")
    assert code == 1 and doc["verdict"] == "FAIL" and not doc["gpu_run"]
    b = part(doc, "b")
    assert b["status"] == "fail" and b["reason"].startswith("2 of 2 cases failed")
    assert "host sync: Tensor.item() copies a device tensor to the host" in b["reason"]
    assert "in a training step between log steps" in b["reason"]
    assert all(r["result"].startswith("FAIL: host sync") for r in b["rows"])
    assert part(doc, "a")["status"] == part(doc, "f")["status"] == "pass"
    assert md.startswith("# GPU acceptance check: FAIL (a development run, not a GPU run)\n\n**Not a GPU run.**")
    assert "| b. Sync audit on the device | FAIL |" in md


def test_the_intact_engine_passes_the_sync_audit_with_every_step_checked(tmp_path, monkeypatch):
    """The audit's own paths (a checkpointed job stopped and resumed, pruning, a run and its pruning, a width job)
    and one case of audit.CASES (tests/test_device_guard.py trains them all on meta)."""
    one = "mlp2 minibatch, shared order, sub-stacks"
    monkeypatch.setattr(audit, "CASES", {one: audit.CASES[one]})
    code, doc, _ = tiny(tmp_path / "r", "b")
    b = part(doc, "b")
    assert b["status"] == "pass" and b["numbers"]["faults"] == 0 and b["numbers"]["cases"] == 6
    # 7 steps between the log steps (1, 5, 10) of each run of 10 steps: the case's two sub-stacks; the
    # checkpointed job's two sub-stacks (the second stopped after step 3 and resumed); a run; a width job. The
    # pruning paths train nothing.
    assert b["numbers"]["steps_checked"] == 2 * 7 + (7 + 2 + 5) + 7 + 7
    assert code == 2 and doc["verdict"] == "INCOMPLETE"  # the other parts were not run: not a PASS


def test_a_part_that_cannot_run_is_skipped_with_its_reason_and_the_check_is_incomplete(tmp_path):
    code, doc, md = tiny(tmp_path / "r", "d", "--repo", tmp_path / "not_a_checkout")
    assert code == 2 and doc["verdict"] == "INCOMPLETE"
    assert part(doc, "d")["status"] == "skipped" and "bench_gpu_grid.py is not in the checkout" in md


def test_an_error_or_an_overrun_fails_its_part_alone(tmp_path, monkeypatch):
    def broken(ctx):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    parts = {p.letter: p for p in runner.PARTS}
    parts["a"] = dataclasses.replace(parts["a"], budget_s=0)  # passes, but after its budget
    parts["b"] = dataclasses.replace(parts["b"], run=broken)
    monkeypatch.setattr(runner, "PARTS", tuple(parts.values()))
    code, doc, _ = tiny(tmp_path / "r", "a", "b", "f")
    assert code == 1 and doc["verdict"] == "FAIL"
    assert part(doc, "a")["status"] == "fail" and part(doc, "a")["reason"].startswith("over its budget")
    assert (
        part(doc, "b")["status"] == "fail"
        and "RuntimeError: CUDA error: an illegal memory access" in (part(doc, "b")["reason"])
    )
    assert part(doc, "f")["status"] == "pass"


@pytest.fixture(scope="module")
def kill_and_resume(tmp_path_factory):
    """Part e of a development run: the smoke preset's widest width job, killed after its first checkpoint and
    resumed (three processes)."""
    out = tmp_path_factory.mktemp("gpu_check")
    code, doc, _ = tiny(out, "e")
    return out / "work" / "kill_resume", part(doc, "e")


def test_a_killed_width_job_resumes_mid_training_and_ends_bit_identical_on_the_cpu(kill_and_resume):
    _, e = kill_and_resume
    assert e["status"] == "pass", e["reason"]
    assert 0 < e["numbers"]["resumed_after_step"] < e["numbers"]["steps"]
    assert set(e["numbers"]["max_diff"]) >= {"final_test_acc", "pruned_test_acc", "neuron_ipr", "diverged_at"}
    assert all(d == 0 for d in e["numbers"]["max_diff"].values())


@pytest.mark.parametrize(
    "key,change,exact,passes",
    [
        ("final_test_acc", 1 / 264, True, False),  # one test example: not bit-identical
        ("pruned_test_loss", 1e-6, True, False),
        ("pruned_test_loss", 1e-6, False, True),  # within CUDA's tolerance
        ("final_test_acc", 0.5, False, False),  # beyond it
    ],
)
def test_a_resumed_result_that_differs_fails_the_part(kill_and_resume, tmp_path, key, change, exact, passes):
    folder, e = kill_and_resume
    shutil.copy(folder / "reference.npz", tmp_path / "reference.npz")
    resumed = killresume.read(folder / "resumed.npz")
    resumed[key] = resumed[key] * (1 + change) if "loss" in key else resumed[key] + change
    write_npz(tmp_path / "resumed.npz", **resumed)
    numbers = {k: e["numbers"][k] for k in ("job", "width", "models", "steps", "resumed_after_step")}
    got = killresume.judge(tmp_path, numbers, exact)
    assert (got.status == "pass") == passes
    if not passes:
        assert got.reason.startswith("the resumed result differs from the uninterrupted run: " + key)


def test_a_training_result_off_the_device_fails_the_smoke_build(tmp_path):
    (tmp_path / "runs" / "r1").mkdir(parents=True)
    (tmp_path / "runs" / "r1" / "summary.json").write_text(json.dumps({"device": "cuda:0"}))
    write_npz(tmp_path / "grids" / "chunks" / "a0500_x.npz", device=np.asarray("cpu"))
    numbers = {"jobs": 3, "wall_s": 1.0, "target": "the whole smoke build"}
    got = smoke.judge(tmp_path, "cuda:0", numbers)
    assert got.status == "fail" and got.reason == "1 training results not on cuda:0: chunk a0500_x on cpu"
    write_npz(tmp_path / "grids" / "chunks" / "a0500_x.npz", device=np.asarray("cuda:0"))
    assert smoke.judge(tmp_path, "cuda:0", numbers).status == "pass"


def test_the_speed_part_measures_the_paper_presets_own_largest_stacks(repo_root):
    """From config/config.yaml through the plan: the width-10000 job of 40 seeds, the d 128 Transformer's chunk,
    MNIST's 784-pixel images, each of its code paths once (twice where another job does more work per step)."""
    from grokking.config import load_preset, validate

    entries = largest_stacks(validate(load_preset(repo_root / "config")))
    first = entries[0]
    assert first["rule"] == "train_width_job" and first["stack"]["width"] == 10000 and len(first["models"]) == 40
    by_path = {}
    for e in entries:
        by_path.setdefault(e["path"], []).append(e)
    assert by_path["transformer, full batch"][0]["stack"]["d_model"] == 128
    mnist = by_path["deep_mlp (mnist), full batch"][0]
    assert mnist["stack"]["inputs"] == 784 and mnist["stack"]["train_fraction"] == 0.9
    assert {e["stack"]["width"] for e in by_path["mlp2, full batch"]} == {10000, 5000}  # Fig 32's, Fig 29's
    assert len(entries) == len(by_path) + 1  # only the 2-layer MLP's full batch has a heavier job than its largest
