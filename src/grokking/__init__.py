"""grok-or-not: reproducible artifact of "To grok or not to grok" (Doshi et al., ICLR 2024).

Light on import: torch is only loaded by the modules that need it, so the Snakemake DAG stays fast.
Loading a result takes three lines::

    from grokking import load_run
    run = load_run("results/quick/runs/r1_wd0")
    run.summary["test_acc"], run.curves["step"], run.curves["train_acc"]

Every result file has its loader: ``load_run``, ``load_grid``, ``load_pruning``, ``load_width_sweep``
(see :mod:`grokking.results`; where the files are: :mod:`grokking.layout`).
"""

from ._version import __version__

LOADERS = ("load_run", "load_grid", "load_pruning", "load_width_sweep", "load_dataset")


def __getattr__(name):
    if name in LOADERS:  # imported on first use, so `import grokking` stays light
        from . import results

        return getattr(results, name)
    raise AttributeError(f"module 'grokking' has no attribute {name!r}")


__all__ = [*LOADERS, "__version__"]
