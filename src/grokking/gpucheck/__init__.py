"""The GPU acceptance check (``make gpu-check``, ``python -m grokking gpu-check``; README, "The GPU acceptance
check"): the first thing to run on a machine with a GPU, within ten minutes, writing one report.

Its parts, each a module with its own time budget, each recorded as pass, fail or skipped with what it measured
and why; a part that fails does not stop the others:

a. :mod:`.environment`: the GPU, its memory, CUDA, cuDNN, torch, the CPU.
b. :mod:`.syncaudit`: every family and training path of the device guard (:mod:`.guard`, :mod:`.audit`) on CUDA.
c. :mod:`.speed`: milliseconds per model-step and peak GPU memory of the paper preset's largest stacks.
d. :mod:`.precisions`: fp32, tf32, bf16 and deterministic fp32 on Fig 3's alpha 0.5 column (bench_gpu_grid.py).
e. :mod:`.killresume`: a width-10000 job killed after its first checkpoint, resumed, and compared.
f. :mod:`.devicepruning`: a run's pruning sweeps on the device against the same sweeps on the CPU.
g. :mod:`.smoke`: the smoke preset end to end on CUDA, into a folder of its own.

:mod:`.runner` runs them and :mod:`.report` writes the report. A development run (``--device cpu --tiny``) runs the
same parts at the smoke preset's sizes on the CPU, the sync audit on the ``meta`` stand-in (as ``make test`` runs the
guard, tests/test_device_guard.py). Importing this package imports no torch.
"""
