"""Part a of the GPU acceptance check: what it runs on (the GPU, its memory and compute capability, the CUDA and
cuDNN versions torch was built with, the driver, torch, Python, the CPU as ``lscpu`` names it)."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess

from .common import PASS, Context, Outcome


def _driver() -> str:
    """The NVIDIA driver's version from ``nvidia-smi`` (torch does not report it), or why it is unknown."""
    if not shutil.which("nvidia-smi"):
        return "unknown (no nvidia-smi)"
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"unknown ({type(err).__name__})"
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else "unknown"


def gpu(device: str) -> dict:
    """The CUDA device ``device`` as torch sees it."""
    import torch

    props = torch.cuda.get_device_properties(torch.device(device))
    return {
        "gpu": props.name,
        "gpu_memory_gib": round(props.total_memory / 2**30, 1),
        "compute_capability": f"{props.major}.{props.minor}",
        "multiprocessors": props.multi_processor_count,
        "visible_gpus": torch.cuda.device_count(),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", "(not set)"),
        "driver": _driver(),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
    }


def run(ctx: Context) -> Outcome:
    import torch

    from ..report.records import cpu_identity, describe_cpu

    numbers = {"device": ctx.device}
    if ctx.gpu:
        numbers.update(gpu(ctx.device))
    else:
        numbers.update({"gpu": None, "cuda": torch.version.cuda, "cudnn": None})
    numbers.update(
        {
            "torch": torch.__version__,
            "python": platform.python_version(),
            "cpu": describe_cpu(cpu_identity()),
            "cpu_cores": os.cpu_count(),
            "host": platform.node(),
        }
    )
    if ctx.gpu:
        what = (
            f"{numbers['gpu']}, {numbers['gpu_memory_gib']} GiB, compute capability {numbers['compute_capability']}; "
            f"torch {numbers['torch']}, CUDA {numbers['cuda']}, cuDNN {numbers['cudnn']}, driver {numbers['driver']}"
        )
    else:
        what = f"no GPU: a development run on the CPU ({numbers['cpu']}); torch {numbers['torch']}"
    rows = [{"what": k, "value": str(v)} for k, v in numbers.items()]
    return Outcome(PASS, what, numbers, rows)
