"""Numeric profiles: which CPU code paths a job's arithmetic takes, so that its bits can be reproduced.

PyTorch picks CPU kernels by instruction set at run time: ATen's own kernels (default, AVX2 or AVX-512),
MKL's BLAS and oneDNN each dispatch on what the CPU offers, and their roundings differ. Training here
is chaotic, so the last bit of one kernel can move a final accuracy. A profile fixes those choices:

* ``portable`` (the presets' default): ATen's AVX2 kernels, MKL's conditional numerical reproducibility
  ``COMPATIBLE`` branch (the one MKL documents as giving the same results on Intel and non-Intel CPUs),
  oneDNN capped at AVX2, and a fixed thread count. A job gets the same bits on every x86-64 CPU with AVX2
  and FMA. On a CPU without AVX2, ATen runs its default kernels and the bits may differ; the recorded
  capability says so.
* ``native``: whatever the machine offers (faster where MKL's AVX-512 or AVX2 paths apply).

The profile is applied through the environment before torch is imported (the Snakefile sets it for
every job it starts, notebooks included); :func:`describe` records what a job actually ran with.
Nothing here imports torch at module level.

The **deterministic mode** (config ``deterministic``) concerns GPUs: on CUDA, ``index_add_`` and the
backward of ``index_select`` (both in the engine) add in an order that varies from run to run, so a
rerun or a resumed job may differ in the last bits. The mode reaches a job through the environment as
the profile does, and the job turns on torch's deterministic algorithms (:func:`apply_deterministic`),
with the cuBLAS workspace setting that deterministic cuBLAS needs. On the CPU it changes no bit.
"""

from __future__ import annotations

import os
import platform
import sys

PROFILE_VAR = "GROKKING_NUMERICS"
PINS = {
    "portable": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "COMPATIBLE", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "native": {},
}
PROFILES = tuple(PINS)
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
DETERMINISTIC_VAR = "GROKKING_DETERMINISTIC"
# cuBLAS is deterministic only with a fixed workspace per stream (CUDA's documentation; torch refuses a
# matrix product in deterministic mode without it): this one, or ":16:8", set before cuBLAS starts.
CUBLAS_VAR, CUBLAS_WORKSPACE = "CUBLAS_WORKSPACE_CONFIG", ":4096:8"


def environment(profile: str, threads: int, deterministic: bool = False) -> dict:
    """The environment variables that put a job started with them on ``profile`` with ``threads``
    intra-op threads (the thread count enters the order of parallel reductions), and in the
    deterministic mode or out of it (explicitly, whatever the calling shell says)."""
    if profile not in PINS:
        raise ValueError(f"numerics: {profile!r} is not one of {list(PROFILES)}")
    env = {PROFILE_VAR: profile, **PINS[profile], DETERMINISTIC_VAR: "1" if deterministic else "0"}
    if deterministic:
        env[CUBLAS_VAR] = CUBLAS_WORKSPACE
    if int(threads) > 0:
        env.update({var: str(int(threads)) for var in THREAD_VARS})
    return env


def job_environment(config: dict) -> dict:
    """The environment of every job of a build of ``config`` (set by the workflow before any job starts):
    its numeric profile, thread count (``resources.threads``) and deterministic mode."""
    return environment(config["numerics"], config["resources"]["threads"], config.get("deterministic", False))


def apply_deterministic() -> bool:
    """Put this process in or out of torch's deterministic algorithms as the environment says (unset: leave
    torch as it is); whether it is in. A job calls it before its first CUDA operation: cuBLAS reads its
    workspace setting when it starts. An operation without a deterministic CUDA kernel then stops the job
    with torch's error naming it, rather than letting it differ from run to run."""
    import torch

    wanted = os.environ.get(DETERMINISTIC_VAR)
    if wanted in ("0", "1"):
        if wanted == "1":
            os.environ.setdefault(CUBLAS_VAR, CUBLAS_WORKSPACE)
        torch.use_deterministic_algorithms(wanted == "1")
    return torch.are_deterministic_algorithms_enabled()


def active_profile() -> str:
    """The profile this process runs under: ``portable`` only if every one of its pins is in force."""
    name = os.environ.get(PROFILE_VAR, "native")
    pins = PINS.get(name)
    if pins is None or any(os.environ.get(k) != v for k, v in pins.items()):
        return "native"
    return name


def cpu_model() -> str:
    """The CPU's model name and whether it has AVX2 / AVX-512 (from /proc/cpuinfo where there is one)."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    name = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                if name and flags:
                    break
    except OSError:
        pass
    isa = [f for f in ("avx2", "fma", "avx512f") if f in flags]
    return f"{name} ({', '.join(isa) or 'no AVX2'})" if flags else name


def describe(device: str = "cpu") -> dict:
    """What a job's arithmetic ran on, for its provenance: the profile, the kernels ATen chose, the MKL
    and oneDNN settings, the thread count, the CPU, torch's version and whether it ran deterministic."""
    import torch

    pins = PINS["portable"]
    out = {
        "profile": active_profile(),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        "device": str(device),
        "aten_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "environment": {k: os.environ.get(k, "") for k in (*pins, *THREAD_VARS)},
        "threads": torch.get_num_threads(),
        "cpu": cpu_model(),
        "torch": torch.__version__,
    }
    if str(device).startswith("cuda"):
        out["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return out


def check(device: str = "cpu") -> str | None:
    """A warning when the portable profile was asked for but cannot hold on this machine, else None."""
    if os.environ.get(PROFILE_VAR) != "portable" or str(device).startswith("cuda"):
        return None
    if active_profile() != "portable":
        return "numerics: portable was asked for but its environment variables were changed; results are native"
    import torch

    got = torch.backends.cpu.get_cpu_capability()
    if got.lower() != PINS["portable"]["ATEN_CPU_CAPABILITY"]:
        return (
            f"numerics: this CPU has no AVX2 (ATen runs its {got} kernels), so results may differ in the last "
            "bits from those of other machines"
        )
    return None


def warn_if_unpinned(device: str = "cpu"):
    message = check(device)
    if message:
        print(message, file=sys.stderr)
