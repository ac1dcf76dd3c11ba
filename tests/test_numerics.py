"""The portable numeric profile gives the same bits on every x86-64 CPU with AVX2.

``tests/data/portable_weights.json`` holds the SHA-256 of the final weights of a small stack of each
model family, trained under the portable profile on the machine named in the file. The test retrains
them here and compares: on another CPU (or instruction set) it passes only if the pin holds, so CI on
a different machine catches a broken pin. A change to the engine that changes the arithmetic changes
the hashes too: the failure message gives the command that stores the new ones.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from grokking import numerics

HERE = Path(__file__).resolve().parent
STORED = HERE / "data" / "portable_weights.json"
PROBE = HERE / "numerics_probe.py"


def clean_environment(extra_env: dict) -> dict:
    """This process's environment without any numeric setting, then ``extra_env``."""
    ours = {*numerics.PINS["portable"], numerics.PROFILE_VAR, numerics.DETERMINISTIC_VAR, numerics.CUBLAS_VAR}
    return {**{k: v for k, v in os.environ.items() if k not in ours}, **extra_env}


def probe(extra_env: dict) -> dict:
    env = clean_environment(extra_env)
    out = subprocess.run([sys.executable, str(PROBE)], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def portable():
    return probe(numerics.environment("portable", threads=1))


def test_portable_weights_are_the_stored_bits(portable):
    stored = json.loads(STORED.read_text())
    assert portable["numerics"]["profile"] == "portable"
    if portable["numerics"]["aten_cpu_capability"] != "AVX2":
        pytest.fail(f"this CPU ({portable['numerics']['cpu']}) has no AVX2: the portable profile cannot hold here")
    differ = sorted(k for k, h in stored["hashes"].items() if portable["hashes"].get(k) != h)
    assert not differ, (
        f"weights of {differ} differ from those stored on {stored['numerics']['cpu']} with torch "
        f"{stored['numerics']['torch']}; here: {portable['numerics']['cpu']}, torch {portable['numerics']['torch']}. "
        "Either the portable pin does not hold on this CPU, or the engine's arithmetic changed: then store the new "
        f"hashes with `{numerics.PROFILE_VAR}=portable ATEN_CPU_CAPABILITY=avx2 MKL_CBWR=COMPATIBLE "
        f"ONEDNN_MAX_CPU_ISA=AVX2 python tests/numerics_probe.py > {STORED.relative_to(HERE.parent)}`"
    )


def test_the_pin_holds_when_the_libraries_see_a_smaller_instruction_set(portable):
    """MKL and oneDNN limited to AVX2 stand in for a CPU without AVX-512: the portable bits do not move."""
    smaller = probe({**numerics.environment("portable", threads=1), "MKL_ENABLE_INSTRUCTIONS": "AVX2"})
    assert smaller["hashes"] == portable["hashes"]


def test_profiles_set_the_environment_and_describe_what_ran():
    env = numerics.environment("portable", threads=2)
    assert env["MKL_CBWR"] == "COMPATIBLE" and env["ATEN_CPU_CAPABILITY"] == "avx2" and env["OMP_NUM_THREADS"] == "2"
    native = numerics.environment("native", threads=0)
    assert native == {numerics.PROFILE_VAR: "native", numerics.DETERMINISTIC_VAR: "0"}
    on = numerics.environment("native", threads=0, deterministic=True)
    assert on[numerics.DETERMINISTIC_VAR] == "1" and on[numerics.CUBLAS_VAR] == ":4096:8"
    with pytest.raises(ValueError, match=r"numerics: 'fast' is not one of \['portable', 'native'\]"):
        numerics.environment("fast", 1)


def test_a_changed_pin_is_recorded_as_native(monkeypatch):
    for key, value in numerics.environment("portable", 1).items():
        monkeypatch.setenv(key, value)
    assert numerics.active_profile() == "portable"
    monkeypatch.setenv("MKL_CBWR", "AUTO")
    assert numerics.active_profile() == "native"
    assert "were changed" in numerics.check()


def test_the_deterministic_mode_changes_no_bit_on_the_cpu(portable):
    """Torch's deterministic algorithms differ from the default ones on CUDA only: the portable bits hold."""
    deterministic = probe(numerics.environment("portable", threads=1, deterministic=True))
    assert deterministic["numerics"]["deterministic"] is True and portable["numerics"]["deterministic"] is False
    assert deterministic["hashes"] == portable["hashes"]


@pytest.mark.parametrize("on", [True, False])
def test_the_deterministic_key_reaches_a_training_job(tmp_path, on):
    """Config ``deterministic`` -> the environment the workflow gives every job (``job_environment``) -> torch's
    flag in the process of a training job, recorded in its result."""
    import yaml

    from grokking.data import Universe
    from grokking.experiments.specs import resolve, with_seed
    from grokking.results import load_chunk, write_npz

    config = yaml.safe_load((HERE.parent / "config" / "config.yaml").read_text())
    config["deterministic"] = on
    stack = resolve(config, {"p": 11, "train_fraction": 0.5, "width": 8}, {"steps": 2})
    job = {"stack": stack, "cells": [["cell1", with_seed(stack, 1)]], "keep": []}
    data, out = tmp_path / "add_p11.npz", tmp_path / "chunk.npz"
    write_npz(data, **Universe.build("add", 11).to_arrays())
    cmd = [sys.executable, "-m", "grokking", "train-chunk", "--job", json.dumps(job), "--data", str(data)]
    cmd += ["--out", str(out), "--device", "cpu", "--threads", "1", "--no-progress"]
    env = clean_environment(numerics.job_environment(config))
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(str(load_chunk(out)["numerics"]))["deterministic"] is on
