"""Studies (config ``studies``): planned from the config, validated with errors that name the key, run
deterministically through ``python -m grokking study``, written with their provenance."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from grokking import cli
from grokking.config import load_preset, validate
from grokking.data import Universe
from grokking.experiments import studyplan
from grokking.experiments.specs import ConfigError, training_examples
from grokking.experiments.studies import run_study, to_csv, write_study
from grokking.layout import Layout
from grokking.results import write_npz

TINY = {
    "question": "a test",
    "from": {"run": "r1_wd0"},
    "steps": 12,
    "across": {"width": [8, 12]},
    "vary": {"weight_decay": [0, 5]},
    "seeds": [1, 2],
    "read_at": [6, 12],
    "curve_points": 4,
    "report": ["ipr", "pruning"],
    "retention": {"low": {"metric": "test_acc", "threshold": 0.0}},
}


@pytest.fixture(scope="module")
def smoke(repo_root):
    return validate(load_preset(repo_root / "config", "smoke"))


@pytest.fixture
def tiny(smoke, tmp_path):
    """The smoke config with one tiny study ``tiny``, its results under ``tmp_path`` (dataset built)."""
    config = copy.deepcopy(smoke)
    config["results_dir"] = str(tmp_path / "results")
    config["studies"] = {"tiny": copy.deepcopy(TINY)}
    write_npz(Layout.from_config(config).dataset("add", 23), **Universe.build("add", 23).to_arrays())
    return config


def test_points_are_products_or_their_union():
    assert studyplan.points(None) == [{}]
    assert studyplan.points({"a": [1, 2], "b": 3}) == [{"a": 1, "b": 3}, {"a": 2, "b": 3}]
    assert studyplan.points([{"a": 1}, {"b": [2, 3]}]) == [{"a": 1}, {"b": 2}, {"b": 3}]


def test_a_study_plans_one_stack_per_across_point(tiny):
    plan = studyplan.plan_study(tiny, "tiny")
    assert [s["point"] for s in plan["stacks"]] == [{"width": 8}, {"width": 12}]
    stack = plan["stacks"][0]
    assert stack["spec"]["width"] == 8 and stack["spec"]["steps"] == 12 and stack["read_at"] == [6, 12]
    assert [(m["point"]["weight_decay"], m["seed"]) for m in stack["members"]] == [(0, 1), (0, 2), (5, 1), (5, 2)]
    assert stack["members"][2]["spec"]["weight_decay"] == 5.0 and stack["members"][1]["spec"]["seed"] == 2
    assert studyplan.study_datasets(tiny, "tiny", Layout.from_config(tiny)) == [
        f"{tiny['results_dir']}/smoke/data/add_p23.npz"
    ]


def test_every_preset_declares_valid_studies_and_smoke_keeps_them_tiny(repo_root):
    for preset in ("paper", "quick", "smoke"):
        config = validate(load_preset(repo_root / "config", preset))
        assert studyplan.study_errors(config) == [], preset
        assert studyplan.study_names(config), preset
    smoke = validate(load_preset(repo_root / "config", "smoke"))
    assert studyplan.study_names(smoke, gpu=True) == []  # the smoke preset builds every study it declares
    for name in studyplan.study_names(smoke):
        plan = studyplan.plan_study(smoke, name)
        work = sum(len(s["members"]) * s["spec"]["steps"] for s in plan["stacks"])
        assert work <= 500, (name, work)


def test_a_study_runs_deterministically_with_its_provenance(tiny, tmp_path):
    first = run_study(tiny, "tiny", device="cpu")
    second = run_study(tiny, "tiny", device="cpu")
    assert first["rows"] == second["rows"]
    assert len(first["rows"]) == 2 * 4 * 2  # across points x (vary points x seeds) x read steps
    row = next(r for r in first["rows"] if r["step"] == 12)
    assert {"width", "weight_decay", "seed", "phase", "train_acc", "test_acc", "ipr_u", "init_ipr_u"} <= set(row)
    assert row["required_low"] == 1.0  # threshold 0: every pruned count 0..N-1 passes, one neuron is left
    assert "ipr_u" not in next(r for r in first["rows"] if r["step"] == 6)  # measures: last step only
    prov = first["provenance"]
    assert prov["code_version"] and prov["numerics"]["cpu"] and "profile" in prov["numerics"]
    assert first["stacks"][1]["spec"]["width"] == 12 and first["config"] == TINY
    write_study(first, tmp_path / "s.json", tmp_path / "s.csv")
    assert json.loads((tmp_path / "s.json").read_text())["rows"][0]["seed"] == 1
    assert (tmp_path / "s.csv").read_text() == to_csv(first)
    assert to_csv(first).splitlines()[0].startswith("width,weight_decay,seed,step,phase,train_acc")


def test_the_study_command_writes_the_preset_results(tiny, capsys):
    config_json = json.dumps(studyplan.study_config(tiny, "tiny"))
    cli.main(["study", "tiny", "--config-json", config_json, "--device", "cpu", "--threads", "1", "--no-progress"])
    layout = Layout.from_config(tiny)
    doc = json.loads(open(layout.study("tiny")).read())
    assert doc["study"] == "tiny" and doc["preset"] == "smoke"
    assert open(layout.study("tiny", ".csv")).read().count("\n") == len(doc["rows"]) + 1
    assert "study tiny: 16 rows from 8 models in 2 trainings" in capsys.readouterr().err


def test_the_plan_counts_each_trainings_work_and_trains_nothing(tiny, capsys):
    """`grokking study NAME --plan`: per training its models, steps and floating-point work (the 2-layer MLP's
    3 B N p multiply-adds per step, x 2), and their sum; nothing is trained or written."""
    config_json = json.dumps(studyplan.study_config(tiny, "tiny"))
    cli.main(["study", "tiny", "--config-json", config_json, "--plan"])
    out = capsys.readouterr().out.splitlines()
    b = training_examples(studyplan.plan_study(tiny, "tiny")["stacks"][0]["spec"])
    work = [2 * 3 * b * width * 23 * 12 * 4 for width in (8, 12)]  # 4 models (2 decays x 2 seeds) each
    assert out[0] == f"study tiny: a CPU study; 2 trainings, 8 models, {sum(work):.3g} FLOP"
    assert out[1:] == [f"  width {w}: 4 models x 12 steps, {f:.3g} FLOP" for w, f in zip((8, 12), work, strict=True)]
    assert not Path(Layout.from_config(tiny).study("tiny")).exists()


@pytest.mark.parametrize(
    "change, key",
    [
        ({"vary": {"norm": ["none"]}}, "studies.tiny.vary.norm"),
        ({"across": {"seed": [1, 2]}}, "studies.tiny.across.seed"),
        ({"across": {"colour": ["red"]}}, "studies.tiny.across.colour"),
        ({"from": {"run": "r99"}}, "studies.tiny.from.run"),
        ({"from": {"grid": "wd", "alpha": 0.4}}, "studies.tiny.from"),
        ({"read_at": [6, 13]}, "studies.tiny.read_at"),
        ({"table": {"columns": "lr"}}, "studies.tiny.table.columns"),
        ({"report": ["bn_rho"]}, "studies.tiny.report"),
    ],
)
def test_a_bad_study_fails_naming_the_key(tiny, change, key, capsys):
    tiny["studies"]["tiny"].update(change)
    errs = studyplan.study_errors(tiny)
    assert len(errs) == 1 and f"config key '{key}'" in errs[0], errs
    with pytest.raises(SystemExit, match=key.replace(".", r"\.")):
        cli.main(["study", "tiny", "--config-json", json.dumps(tiny), "--device", "cpu"])


def test_the_schema_rejects_unknown_study_keys(tiny):
    tiny["studies"]["tiny"]["sedes"] = [1]
    with pytest.raises(ConfigError, match=r"config key 'studies.tiny': unknown key\(s\) \['sedes'\]"):
        validate(tiny)
    del tiny["studies"]["tiny"]["sedes"]
    tiny["studies"]["tiny"]["report"] = ["accuracy"]
    with pytest.raises(ConfigError, match=r"config key 'studies.tiny.report.0'"):
        validate(tiny)


def test_an_unknown_study_and_a_missing_dataset_say_what_to_do(tiny, tmp_path):
    with pytest.raises(SystemExit, match="study 'nope' is not defined; defined studies: \\['tiny'\\]"):
        cli.main(["study", "nope", "--config-json", json.dumps(tiny)])
    tiny["results_dir"] = str(tmp_path / "elsewhere")
    with pytest.raises(ConfigError, match="add_p23.npz does not exist; build it first: snakemake .*smoke.yaml"):
        run_study(tiny, "tiny", device="cpu")


def test_dropout_on_reads_like_eval_mode_without_dropout(smoke, tmp_path):
    """A net without dropout has nothing to mask: both readings agree; with dropout they differ."""
    from grokking.data.images import build_image_set

    config = copy.deepcopy(smoke)
    config["results_dir"] = str(tmp_path)
    config["studies"] = {"d": dict(config["studies"]["images_dropout_on"], steps=10)}
    d = config["data"]["digits"]
    images = build_image_set("digits", pool=d["train_pool"], pool_seed=d["pool_seed"], label_seed=0)
    write_npz(Layout.from_config(config).image_dataset("digits"), **images.to_arrays())
    rows = run_study(config, "d", device="cpu")["rows"]
    plain, dropped = rows[0], rows[-1]
    assert plain["dropout"] == 0 and plain["test_acc_dropout_on"] == plain["test_acc"]
    assert dropped["dropout"] == 0.6 and dropped["train_acc_dropout_on"] != dropped["train_acc"]


def test_the_study_command_reads_config_files_as_snakemake_does(repo_root, tmp_path):
    """``--config overlay.yaml`` lays the overlay over the config.yaml beside it, as ``--configfile`` does."""
    import shutil

    import yaml

    shutil.copy(repo_root / "config" / "config.yaml", tmp_path / "config.yaml")
    overlay = yaml.safe_load((repo_root / "config" / "smoke.yaml").read_text())
    overlay.update(results_dir=str(tmp_path / "results"), studies={"tiny": dict(TINY, report=[])})
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(overlay))
    write_npz(tmp_path / "results" / "smoke" / "data" / "add_p23.npz", **Universe.build("add", 23).to_arrays())
    cli.main(["study", "tiny", "--config", str(tmp_path / "mine.yaml"), "--device", "cpu", "--no-progress"])
    assert json.loads((tmp_path / "results" / "smoke" / "studies" / "tiny.json").read_text())["study"] == "tiny"
    overlay["studies"]["tiny"]["seed"] = 3
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(overlay))
    with pytest.raises(SystemExit, match=r"config key 'studies.tiny': unknown key\(s\) \['seed'\]"):
        cli.main(["study", "tiny", "--config", str(tmp_path / "mine.yaml")])
