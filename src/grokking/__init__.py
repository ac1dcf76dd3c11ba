"""grok-or-not: reproducible artifact of "To grok or not to grok" (Doshi et al., ICLR 2024).

Light on import: torch is only loaded by the modules that need it, so the Snakemake DAG
(which imports :mod:`grokking.config`) stays fast.

Loading a result takes three lines::

    from grokking import load_run
    run = load_run("results/quick/runs/fig1_wd0")
    run.summary["test_acc"], run.curves["step"], run.curves["train_acc"]
"""

__version__ = "0.1.0"


def load_run(path):
    """Load a finished single run (see :func:`grokking.results.load_run`)."""
    from .results import load_run as _load_run

    return _load_run(path)


__all__ = ["load_run", "__version__"]
