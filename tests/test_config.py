"""Config validation: bad configs fail with a message naming the key and what is accepted."""

import copy
import subprocess
import sys
from pathlib import Path

import pytest

import grokking
from grokking.config import CLAIMS_PATH, ConfigError, claim_ids, deep_merge, load_preset, validate
from grokking.runspec import SCHEMA_PATH, resolve_run


@pytest.fixture(scope="module")
def paper(repo_root):
    return load_preset(repo_root / "config")


@pytest.mark.parametrize("preset", ["paper", "quick", "smoke", "gpu", "rehearse"])
def test_every_preset_is_valid(repo_root, preset):
    validate(load_preset(repo_root / "config", preset))


def test_an_unknown_preset_names_the_accepted_ones(repo_root):
    with pytest.raises(ConfigError, match=r"preset: no .*fast\.yaml; accepted: paper, gpu, quick, rehearse, smoke"):
        load_preset(repo_root / "config", "fast")


def test_paper_preset_pins_the_paper_settings(paper):
    r1, r2, r3 = (resolve_run(paper, r) for r in ("r1_wd0", "r2_wd5", "r3_wd15"))
    assert (r1["weight_decay"], r1["steps"]) == (0, 1000)
    assert (r2["weight_decay"], r2["steps"]) == (5, 500)
    assert (r3["weight_decay"], r3["steps"]) == (15, 500)
    for r in (r1, r2, r3):
        assert (r["p"], r["width"], r["train_fraction"], r["corruption"], r["lr"]) == (97, 500, 0.5, 0.35, 0.01)
        assert r["betas"] == [0.9, 0.98] and r["batch_size"] == "full" and r["loss"] == "mse"
    r5 = resolve_run(paper, "r5_wd20")
    assert (r5["weight_decay"], r5["steps"]) == (20, 5000)
    bn = resolve_run(paper, "r12_bn_a05")
    assert (bn["norm"], bn["batch_size"], bn["lr"], bn["steps"], bn["corruption"]) == (
        "batchnorm",
        64,
        0.005,
        4000,
        0.3,
    )
    assert [resolve_run(paper, r)["dropout"] for r in ("r6_dp03", "r7_dp06", "r8_dp09")] == [0.3, 0.6, 0.9]


def test_mnist_grids_resolve_to_the_mnist_mlp_and_the_quick_preset_to_the_digits(repo_root, paper):
    """docs/paper.md §A12's Fig 16 defaults (784 -> 500 -> 500 -> 500 -> 10, CE, lr 1e-3, 2000 steps, pool 10,000);
    the quick preset swaps in the offline digits and nothing else it does not say."""
    from grokking.runspec import cell_spec, training_examples

    spec = cell_spec(paper, "images_dropout", 0.3, 0.5, 0.2)
    got = {k: spec[k] for k in ("model", "dataset", "depth", "width", "inputs", "classes", "activation", "loss")}
    assert got == dict(
        model="deep_mlp", dataset="mnist", depth=4, width=500, inputs=784, classes=10, activation="relu", loss="ce"
    )
    assert (spec["lr"], spec["steps"], spec["batch_size"], spec["dropout"]) == (0.001, 2000, "full", 0.3)
    assert (spec["train_pool"], training_examples(spec)) == (10000, 5000)
    quick = load_preset(repo_root / "config", "quick")
    q = cell_spec(quick, "images_wd", 10, 0.8, 0.2)
    assert (q["dataset"], q["inputs"], q["train_pool"], q["width"], q["steps"]) == ("digits", 64, 1000, 64, 2000)
    assert training_examples(q) == 800


@pytest.mark.parametrize(
    "mutation,message",
    [
        (
            {"run_defaults": {"activation": "cubic"}},
            "config key 'run_defaults.activation': 'cubic' is not one of ['quadratic', 'relu']",
        ),
        ({"runs": {"r1_wd0": {"wd": 5}}}, "config key 'runs.r1_wd0': unknown key(s) ['wd']"),
        (
            {"runs": {"r1_wd0": {"batch_size": 0}}},
            "config key 'runs.r1_wd0.batch_size': 0 is not accepted; expected 'full' or an integer >= 1",
        ),
        (
            {"runs": {"r1_wd0": {"batch_size": 5000}}},
            "config key 'runs.r1_wd0.batch_size': 5000 exceeds the 4704 training examples",
        ),
        ({"runs": {"r1_wd0": {"steps": -1}}}, "config key 'runs.r1_wd0.steps'"),
        ({"runs": {"r1_wd0": {"train_fraction": 1.5}}}, "config key 'runs.r1_wd0.train_fraction'"),
        ({"figures": {"fig01": {"runs": {"a": "r99"}}}}, "config key 'figures.fig01.runs.a': run 'r99' is not defined"),
        ({"device": "tpu"}, "config key 'device'"),
        (
            {"grids": {"images_wd": {"settings": {"model": "mlp2"}}}},
            "config key 'grids.images_wd.settings.dataset': mnist needs model: deep_mlp (dense inputs), not 'mlp2'",
        ),
        ({"runs": {"r1_wd0": {"dataset": "cifar"}}}, "config key 'runs.r1_wd0.dataset': 'cifar' is not one of"),
        (
            {"run_defaults": {"dropout_layers": "output"}},
            "config key 'run_defaults.dropout_layers': 'output' is not one of ['hidden', 'first', 'inputs']",
        ),
        (
            {"runs": {"m_bn": {"dropout_layers": "inputs"}}},
            "config key 'runs.m_bn.dropout_layers': 'inputs' needs an image dataset (dense inputs); accepted here: "
            "hidden, first",
        ),
        (
            {"grids": {"images_dropout": {"settings": {"eval_dropout": "on"}}}},
            "config key 'grids.images_dropout.settings.eval_dropout': 'on' is not of type 'boolean'",
        ),
        ({"data": {"mnist": {"train_pool": 70000}}}, "config key 'data.mnist.train_pool': 70000 is greater than"),
        ({"data": {"digits": {"dir": "/data"}}}, "config key 'data.digits': unknown key(s) ['dir']"),
        ({"ipr": {"mode": "dct"}}, "config key 'ipr.mode': 'dct' is not one of ['rfft', 'fft']"),
        (
            {"run_defaults": {"precision": "fp16"}},
            "config key 'run_defaults.precision': 'fp16' is not one of ['fp32', 'tf32', 'bf16']",
        ),
        ({"colour": "red"}, "config key '<top level>': unknown key(s) ['colour']"),
        (
            {"claims": {"thresholds": {"coexistense": 0.8}}},
            "config key 'claims.thresholds.coexistense': unknown claim; accepted ids: [",
        ),
        (
            {"claims": {"known_failures": {"coexistense": "typo"}}},
            "config key 'claims.known_failures.coexistense': unknown claim; accepted ids: [",
        ),
        ({"claims": {"known_failures": {"coexistence": ""}}}, "config key 'claims.known_failures.coexistence'"),
        (
            {"robustness": {"claims": ["coexistence", "coexistense"]}},
            "config key 'robustness.claims' ('coexistense'): unknown claim; accepted ids: [",
        ),
        ({"robustness": {"claims": ["coexistence", "coexistence"]}}, "config key 'robustness.claims': "),
        ({"figures": {"fig06": {"pruning": "yes"}}}, "config key 'figures.fig06.pruning'"),
        (
            {"width_sweep": {"retention": {"metric": "corrupted_acc"}}},
            "config key 'width_sweep.retention.metric': 'corrupted_acc' is not one of ['test_acc', 'full_acc', "
            "'train_acc', 'uncorrupted_acc']",
        ),
        ({"width_sweep": {"retention": {"rule": "median"}}}, "config key 'width_sweep.retention.rule'"),
        ({"width_sweep": {"retention": {"relative": "yes"}}}, "config key 'width_sweep.retention.relative'"),
        ({"width_sweep": {"retention": {"generalized": 1.5}}}, "config key 'width_sweep.retention.generalized'"),
        ({"width_sweep": {"widths": [500]}}, "config key 'width_sweep.widths'"),
        ({"claims": {"strict": "yes"}}, "config key 'claims.strict'"),
        ({"numerics": "fast"}, "config key 'numerics': 'fast' is not one of ['portable', 'native']"),
        ({"deterministic": "yes"}, "config key 'deterministic': 'yes' is not of type 'boolean'"),
        (
            {"grids": {"mlp3_wd": {"keep_weights": [[0.33, 0.2]]}}},
            "config key 'grids.mlp3_wd.keep_weights': figure fig07 histograms a stored cell of the grid, but none "
            "of [[0.33, 0.2]] is on it",
        ),
    ],
)
def test_bad_values_are_rejected_with_the_key(paper, mutation, message):
    with pytest.raises(ConfigError) as err:
        validate(deep_merge(paper, mutation))
    assert message in str(err.value)


def test_resolve_run_overlays_defaults(paper):
    spec = resolve_run(paper, "r4_clean")
    assert spec["corruption"] == 0.0 and spec["weight_decay"] == 5 and spec["steps"] == 100
    assert spec["pair_seed"] == 420 and spec["label_seed"] == 0 and spec["ipr_mode"] == "rfft"
    with pytest.raises(ConfigError, match="run 'nope' is not defined"):
        resolve_run(paper, "nope")


def test_a_width_sweep_figure_needs_the_width_sweep_settings(paper):
    cfg = copy.deepcopy(paper)
    del cfg["width_sweep"]
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    assert "config key 'figures.fig32.width_sweep': the figure needs the top-level 'width_sweep'" in str(err.value)


def test_paper_width_sweep_is_the_papers(paper):
    from grokking.experiments.gridplan import width_sweep_jobs

    jobs = width_sweep_jobs(paper)
    widths = sorted({j["spec"]["width"] for j in jobs.values()})
    assert len(widths) == 20 and widths[0] == 500 and widths[-1] == 10000
    assert all(b / a == pytest.approx(20 ** (1 / 19), rel=0.01) for a, b in zip(widths, widths[1:], strict=False))
    assert sum(len(j["seeds"]) for j in jobs.values()) == 800
    spec = next(iter(jobs.values()))["spec"]
    assert (
        spec["train_fraction"],
        spec["corruption"],
        spec["lr"],
        spec["weight_decay"],
        spec["loss"],
        spec["steps"],
        spec["p"],
    ) == (0.5, 0.35, 0.005, 1.0, "mse", 3000, 97)  # 3000 steps: docs/decisions/016-width-sweep.md


def test_the_schema_and_the_claims_are_package_data():
    """Found beside the package's modules, so that an installed wheel validates a config outside a checkout."""
    package = Path(grokking.__file__).resolve().parent
    assert SCHEMA_PATH.parent == CLAIMS_PATH.parent == package
    assert SCHEMA_PATH.is_file() and CLAIMS_PATH.is_file()


def test_claim_ids_come_from_the_claims_file_without_the_report(tmp_path, repo_root):
    """Validation knows the claims by their ids in claims.yaml, and does not import the report for them."""
    ids = claim_ids()
    assert ids == sorted(set(ids)) and "coexistence" in ids
    own = tmp_path / "claims.yaml"
    own.write_text("claims:\n  - {id: b_claim, figure: Fig 1}\n  - {id: a_claim}\n")
    assert claim_ids(own) == ["a_claim", "b_claim"]
    code = (
        f"import sys; sys.path.insert(0, {str(Path(grokking.__file__).resolve().parents[1])!r})\n"
        "from grokking.config import load_preset, validate\n"
        f"config = load_preset({str(repo_root / 'config')!r}, 'quick')\n"
        "assert config['claims']['known_failures']\n"
        "validate(config); print(sorted(m for m in sys.modules if m.startswith('grokking.report')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
