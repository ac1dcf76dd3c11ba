import copy
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("MPLBACKEND", "Agg")


def deep_merge(base, over):
    """``over`` laid over ``base`` key by key, as Snakemake merges a --configfile into the config."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def table2_phase(train, test, xi, max_test):
    """The expected phase, independent of ``grokking.phases``: PAPER.md A10's ordered decision list
    written out (fractions, ">=" inclusive, first match wins)."""
    rows = (
        ("Coexistence", test >= 0.9 and train >= 0.9),
        ("Partial Inversion", test >= 0.9 and train >= round(1.05 - xi, 10)),
        ("Full Inversion", test >= 0.9),
        ("Memorization", train >= 0.9),
        ("Forgetting", max_test >= 0.9),
    )
    return next((name for name, hit in rows if hit), "Confusion")


@pytest.fixture(scope="session")
def repo_root():
    return ROOT


@pytest.fixture(autouse=True)
def _torch_threads():
    import torch

    # Small test models are fastest single-threaded (and oversubscribed threads crawl on a busy CI box);
    # the paper-size tests raise this themselves.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
