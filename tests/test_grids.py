"""Grid planning, batched chunk training (batch invariance) and merging."""

import copy

import numpy as np
import pytest
import yaml

from grokking.data import Universe
from grokking.experiments.gridplan import chunks_of_grid, grid_cells, plan
from grokking.experiments.grids import merge_grid, train_chunk
from grokking.experiments.specs import cell_spec
from grokking.phases import PHASES, classify
from grokking.results import load_grid, write_npz


@pytest.fixture(scope="module")
def paper(repo_root):
    return yaml.safe_load(open(repo_root / "config" / "config.yaml"))


def test_paper_grids_have_the_paper_sizes_and_share_cells(paper):
    wd = grid_cells(paper, "wd")
    assert len(wd) == 4 * 19 * 17  # 1292 cells (docs/paper.md §C2, G1)
    chunks = plan(paper)
    n_unique = sum(len(c["cells"]) for c in chunks.values())
    # 12 MLP grids x 4 panels x 323 cells, minus the 3 zero-regularization panels shared by wd/dropout
    # pairs; then 3 seeds per cell of the Transformer (2 + 4 panels) and 3-layer MLP (2 + 2 panels) grids;
    # then MNIST's 5 weight-decay and 4 dropout panels: the dropout panels are measured with dropout on
    # (eval_dropout), so their dropout 0 is not weight decay 0's cell
    assert n_unique == 12 * 4 * 323 - 3 * 323 + 3 * (2 + 4 + 2 + 2) * 323 + (5 + 4) * 323
    mnist = {c["id"] for g in ("images_wd", "images_dropout") for c in grid_cells(paper, g)}
    assert all(chunks[n]["stack"]["dataset"] == "mnist" for n in chunks if chunks[n]["cells"][0][0] in mnist)
    wd0 = {c["id"] for c in wd if c["panel"] == 0}
    dp0 = {c["id"] for c in grid_cells(paper, "dropout") if c["panel"] == 0}
    assert wd0 == dp0
    for ch in chunks.values():  # one alpha and one stack per chunk, at most chunk_size cells
        assert len(ch["cells"]) <= paper["grid_defaults"]["chunk_size"]
    assert set().union(*(set(c[0] for c in chunks[n]["cells"]) for n in chunks_of_grid(paper, "wd", chunks))) >= {
        c["id"] for c in wd
    }


def test_minibatch_rule(paper):
    spec = cell_spec(paper, "batchnorm", 8, 0.5, 0.3)
    assert (spec["steps"], spec["batch_size"], spec["norm"]) == (64000, 8, "batchnorm")
    assert spec["lr"] == pytest.approx(0.01 * (8 / 256) ** 0.5)
    assert cell_spec(paper, "minibatch", 64, 0.5, 0.3)["steps"] == 8000
    assert cell_spec(paper, "wd", 5, 0.5, 0.3)["log_every"] == 100  # 2000 / curve_points


def small_config(paper):
    cfg = copy.deepcopy(paper)
    cfg["run_defaults"].update(p=13, width=32, steps=60)
    cfg["grid_defaults"].update(
        train_fractions=[0.5, 0.8],
        corruptions=[0.0, 0.2, 0.4],
        chunk_size=4,
        curve_points=10,
        keep_weights=[[0.5, 0.2]],
    )
    cfg["grids"] = {
        "wd": {"panel_key": "weight_decay", "panels": [0, 2]},
        "dropout": {"panel_key": "dropout", "panels": [0, 0.5]},
    }
    return cfg


@pytest.fixture(scope="module")
def small(tmp_path_factory, paper):
    cfg = small_config(paper)
    root = tmp_path_factory.mktemp("grid")
    data = root / "add_p13.npz"
    write_npz(data, **Universe.build("add", 13).to_arrays())
    chunks = plan(cfg)
    paths = {}
    for name, chunk in chunks.items():
        paths[name] = root / f"{name}.npz"
        train_chunk(chunk, data, paths[name], device="cpu", progress=False)
    return cfg, root, data, chunks, paths


def test_a_cell_alone_equals_the_cell_inside_its_batch(small):
    cfg, root, data, chunks, paths = small
    name = max(chunks, key=lambda n: len(chunks[n]["cells"]))
    chunk = chunks[name]
    assert len(chunk["cells"]) >= 3
    with np.load(paths[name]) as z:
        batched = {k: z[k] for k in z.files}
    for j in (0, len(chunk["cells"]) - 1):
        alone = dict(chunk, cells=[chunk["cells"][j]])
        train_chunk(alone, data, root / "alone.npz", device="cpu", progress=False)
        with np.load(root / "alone.npz") as z:
            for key in [k for k in z.files if k.startswith("curve_")] + ["neuron_ipr"]:
                np.testing.assert_allclose(
                    z[key][..., 0] if key.startswith("curve_") else z[key][0],
                    batched[key][..., j] if key.startswith("curve_") else batched[key][j],
                    rtol=1e-4,
                    atol=1e-5,
                    err_msg=key,
                )


def test_merge_places_cells_and_classifies(small):
    cfg, root, data, chunks, paths = small
    out = merge_grid(
        cfg,
        "dropout",
        [paths[n] for n in chunks_of_grid(cfg, "dropout", chunks)],
        root / "dropout.npz",
        root / "dropout.csv",
        root / "dropout_weights.npz",
    )
    g = load_grid(root / "dropout.npz")
    assert g["phase"].shape == (2, 3, 2) and g["curve_test_acc"].shape == (2, 3, 2, 11)
    np.testing.assert_array_equal(g["panels"], [0, 0.5])
    # the dropout-0 panel is the very same cells as the wd-0 panel of the other grid
    merge_grid(cfg, "wd", [paths[n] for n in chunks_of_grid(cfg, "wd", chunks)], root / "wd.npz", root / "wd.csv")
    w = load_grid(root / "wd.npz")
    np.testing.assert_array_equal(w["test_acc"][0], g["test_acc"][0])
    xi = np.asarray([0.0, 0.2, 0.4])[None, :, None]
    names = classify(g["train_acc"], g["test_acc"], xi, g["max_test_acc"])
    np.testing.assert_array_equal(np.asarray(PHASES)[g["phase"]], names)
    np.testing.assert_array_equal(g["max_test_acc"], g["curve_test_acc"].max(-1))
    # the final metrics are the last curve point, and n_noise follows the exact counts
    np.testing.assert_array_equal(g["test_acc"], g["curve_test_acc"][..., -1].astype(float))
    assert g["n_noise"][0, 1, 0] == int(0.2 * int(0.5 * 169))
    rows = (root / "dropout.csv").read_text().splitlines()
    assert len(rows) == 1 + 12 and rows[0].startswith("grid,panel_key,panel,train_fraction,corruption,dropout,seed")
    with np.load(root / "dropout_weights.npz") as z:
        assert sorted(k.split("/")[0] for k in z.files if k.endswith("/U")) == ["0_1_0", "1_1_0"]  # (0.5, 0.2)
    assert out["phase"].dtype == np.int8


def test_stored_cells_hold_the_trained_models_ipr(small):
    """A keep_weights cell of a merged grid gives its model's phase and IPR at init and at the end, equal
    to the same model trained as a named run."""
    from grokking.experiments.runs import run_and_save
    from grokking.results import grid_cell, load_run

    cfg, root, data, chunks, paths = small
    merge_grid(cfg, "wd", [paths[n] for n in chunks_of_grid(cfg, "wd", chunks)], root / "wd.npz", root / "wd.csv")
    g = load_grid(root / "wd.npz")
    cell = grid_cell(g, -1)  # the last panel's only stored cell: wd 2, alpha 0.5, xi 0.2
    assert (cell.spec["weight_decay"], cell.spec["train_fraction"], cell.spec["corruption"]) == (2, 0.5, 0.2)
    assert cell.phase == PHASES[g["phase"][1, 1, 0]]
    run_and_save(cell.spec, data, root / "run", progress=False)
    run = load_run(root / "run")
    for component in ("neuron_ipr", "ipr_u", "ipr_w"):
        for init in (False, True):
            np.testing.assert_allclose(
                cell.ipr(component, init=init), run.ipr(component, init=init), rtol=1e-4, atol=1e-6
            )
    assert not np.allclose(cell.ipr("ipr_w"), cell.ipr("ipr_w", init=True))
    with pytest.raises(KeyError, match=r"keep_weights"):
        grid_cell(g, 0, 0.8, 0.4)
    with pytest.raises(KeyError, match=r"ipr_embed.*ipr_u"):
        cell.ipr("ipr_embed")


@pytest.mark.parametrize("batch_size", [None, 400])
def test_blocked_gradients_equal_the_whole_batch(monkeypatch, batch_size):
    """Large stacks sum gradients over blocks of examples; the result must not change.

    Full batch takes the shared-input path (blocks of >= 128 examples), a minibatch with per-model
    batch orders the per-model path (blocks of >= 256 examples); both are cut into several blocks here.
    """
    import grokking.models.mlp2_grads as models
    from grokking.engine import ModelSettings, StackSettings, train
    from grokking.models.mlp2 import MLPShape

    split = Universe.build("add", 23).split(0.8)  # 423 training pairs
    settings = StackSettings(MLPShape(23, 16), steps=40, log_steps=(10, 40), batch_size=batch_size)
    cells = [
        ModelSettings(corruption=0.3, weight_decay=wd, dropout=dp, seed=s)
        for wd, dp, s in ((0.0, 0.0, 1), (5.0, 0.3, 2), (1.0, 0.0, 3))
    ]
    whole = train(split, settings, cells, device="cpu", progress=False)
    monkeypatch.setattr(models, "BLOCK_ELEMENTS", 1)
    monkeypatch.setattr(models, "SHARED_BLOCK_ELEMENTS", 1)
    assert models.shared_block_rows(3, 16, "cpu") == 128
    blocked = train(split, settings, cells, device="cpu", progress=False)
    for key in whole.params:
        np.testing.assert_allclose(blocked.params[key], whole.params[key], rtol=1e-4, atol=1e-6, err_msg=key)
    np.testing.assert_allclose(blocked.curves["batch_loss"], whole.curves["batch_loss"], rtol=1e-5)
    np.testing.assert_array_equal(blocked.curves["train_acc"], whole.curves["train_acc"])


def test_sub_stacks_train_exactly_like_one_stack():
    """On CPU large stacks are cut into sub-stacks (cache-sized); the models are independent, so the
    cut must not change any model's trajectory, weights or curves."""
    from grokking.engine import ModelSettings, StackSettings, train
    from grokking.models.mlp2 import CPU_TABLE_BYTES, MLPShape, cpu_sub_stack

    split = Universe.build("add", 23).split(0.6)
    settings = StackSettings(MLPShape(23, 16), steps=30, log_steps=(10, 30), record_neuron_ipr=True)
    cells = [
        ModelSettings(corruption=xi, weight_decay=wd, dropout=dp, seed=s)
        for xi, wd, dp, s in (
            (0.0, 0.0, 0.0, 1),
            (0.3, 5.0, 0.3, 2),
            (0.2, 1.0, 0.0, 3),
            (0.1, 0.0, 0.6, 4),
            (0.3, 15.0, 0.0, 5),
        )
    ]
    whole = train(split, settings, cells, device="cpu", progress=False, max_stack=len(cells))
    cut = train(split, settings, cells, device="cpu", progress=False, max_stack=2)
    for key in whole.params:
        np.testing.assert_allclose(cut.params[key], whole.params[key], rtol=1e-5, atol=1e-7, err_msg=key)
        assert torch_equal(cut.init_params[key], whole.init_params[key])
    for key, curve in whole.curves.items():
        np.testing.assert_allclose(cut.curves[key], curve, rtol=1e-5, atol=1e-7, err_msg=key)
    np.testing.assert_allclose(cut.neuron_ipr, whole.neuron_ipr, rtol=1e-5, atol=1e-7)
    assert cut.n_noise.tolist() == whole.n_noise.tolist()
    # the default cut: as many models as have their first-layer tables (2 p N float32 = 8 p N bytes each) in
    # CPU_TABLE_BYTES = 2^21 = 2,097,152, rounded down to a multiple of 4:
    #   paper size p 97, N 500: 8 * 97 * 500 = 388,000 B; 5 * 388,000 = 1,940,000 fits, 6 do not -> 4
    #   quick grids p 59, N 256: 8 * 59 * 256 = 120,832 B; 17 * 120,832 = 2,054,144 fits, 18 do not -> 16
    assert CPU_TABLE_BYTES == 2**21
    assert (cpu_sub_stack(MLPShape(97, 500)), cpu_sub_stack(MLPShape(59, 256))) == (4, 16)
    for p, width in ((97, 500), (59, 256), (23, 16), (13, 24), (97, 2000), (7, 4), (97, 1200), (97, 5000), (97, 10000)):
        table, k = 8 * p * width, cpu_sub_stack(MLPShape(p, width))
        assert k >= 1, (p, width)
        if table <= CPU_TABLE_BYTES:  # the sub-stack's tables fit, and one step of the rounding more does not
            assert k * table <= CPU_TABLE_BYTES < (k + (4 if k >= 4 else 1)) * table, (p, width, k)
        else:  # one model alone is larger than the budget: it still trains
            assert k == 1, (p, width)
        assert k < 4 or k % 4 == 0, (p, width, k)  # even split over 1, 2 or 4 threads


def torch_equal(a, b):
    import torch

    return torch.equal(a, b)


def test_seeded_grid_combines_seeds_and_shares_its_first_seed(small, paper, tmp_path):
    """A grid with ``seeds`` trains every seed of every cell; the combined phase follows ``seed_phase``."""
    cfg, root, data, _, paths = small
    cfg = copy.deepcopy(cfg)
    cfg["grids"]["wd3"] = {"panel_key": "weight_decay", "panels": [0, 2], "seeds": [1, 5, 9]}
    cells = grid_cells(cfg, "wd3")
    assert len(cells) == 2 * 3 * 2 * 3 and {c["spec"]["seed"] for c in cells} == {1, 5, 9}
    # seed 1 is run_defaults' seed: those models are the very cells of the unseeded wd grid
    assert {c["id"] for c in cells if c["spec"]["seed"] == 1} == {c["id"] for c in grid_cells(cfg, "wd")}
    chunks = plan(cfg)
    new = {n: ch for n, ch in chunks.items() if n not in paths}
    for name, chunk in new.items():
        train_chunk(chunk, data, tmp_path / f"{name}.npz", device="cpu", progress=False)
    files = [paths.get(n, tmp_path / f"{n}.npz") for n in chunks_of_grid(cfg, "wd3", chunks)]
    merge_grid(cfg, "wd3", files, tmp_path / "wd3.npz", tmp_path / "wd3.csv")
    g = load_grid(tmp_path / "wd3.npz")
    assert g["test_acc_seeds"].shape == (2, 3, 3, 2) and g["phase"].shape == (2, 3, 2)
    np.testing.assert_allclose(g["test_acc"], g["test_acc_seeds"].mean(1), rtol=1e-6)
    assert not np.allclose(g["test_acc_seeds"][:, 0], g["test_acc_seeds"][:, 1])  # the seeds differ
    xi = np.asarray([0.0, 0.2, 0.4])[None, None, :, None]
    per_seed = classify(g["train_acc_seeds"], g["test_acc_seeds"], xi, g["max_test_acc_seeds"])
    np.testing.assert_array_equal(np.asarray(PHASES)[g["phase_seeds"]], per_seed)
    mean = classify(g["train_acc"], g["test_acc"], xi[:, 0], g["curve_test_acc"].max(-1))
    np.testing.assert_array_equal(np.asarray(PHASES)[g["phase"]], mean)
    rows = (tmp_path / "wd3.csv").read_text().splitlines()
    assert len(rows) == 1 + 36
    # majority: the most common per-seed phase
    cfg["grids"]["wd3"]["seed_phase"] = "majority"
    merge_grid(cfg, "wd3", files, tmp_path / "m.npz", tmp_path / "m.csv")
    m = load_grid(tmp_path / "m.npz")
    for idx in np.ndindex(*m["phase"].shape):
        votes = list(m["phase_seeds"][idx[0], :, idx[1], idx[2]])
        assert votes.count(m["phase"][idx]) == max(votes.count(v) for v in votes)
