"""The ``precision`` knob (grokking.engine.precision): fp32 is the reference, tf32 only changes CUDA matrix
products, bf16 runs the forward pass under bfloat16 autocast and stays close to fp32."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from grokking.data import Universe
from grokking.engine import ModelSettings, StackSettings, train
from grokking.engine.precision import PRECISIONS, computing
from grokking.experiments.specs import resolve, stack_settings
from grokking.models.deep_mlp import DeepMLPShape
from grokking.models.mlp2 import MLPShape
from grokking.models.transformer import TransformerShape

P = 13


@pytest.fixture(scope="module")
def split():
    return Universe.build("add", P).split(0.6)


MODELS = [ModelSettings(corruption=0.2, weight_decay=1.0, lr=3e-3, seed=s) for s in (1, 2)]
SHAPES = {
    "mlp2 (hand-written gradients in fp32)": (MLPShape(P, 24, "quadratic", "none"), "mse", None),
    "mlp2 batchnorm": (MLPShape(P, 24, "quadratic", "batchnorm"), "mse", 16),
    "transformer": (TransformerShape(p=P, d_model=16, heads=2), "mse", None),
    "deep mlp batchnorm": (DeepMLPShape(p=P, width=16, norm="batchnorm"), "ce", 16),
}


def _train(split, name, precision, steps=40):
    shape, loss, bs = SHAPES[name]
    settings = StackSettings(shape, loss=loss, batch_size=bs, steps=steps, precision=precision)
    return train(split, settings, MODELS, device="cpu", progress=False)


@pytest.mark.parametrize("name", SHAPES)
def test_tf32_computes_what_fp32_does_on_a_cpu(split, name):
    a, b = _train(split, name, "fp32"), _train(split, name, "tf32")
    for key in a.curves:
        np.testing.assert_array_equal(a.curves[key], b.curves[key], err_msg=key)
    for key in a.params:
        assert torch.equal(a.params[key], b.params[key]), key


@pytest.mark.parametrize("name", SHAPES)
def test_bf16_rounds_the_forward_pass_and_stays_close_to_fp32(split, name):
    a, b = _train(split, name, "fp32"), _train(split, name, "bf16")
    for key in a.params:
        assert b.params[key].dtype == torch.float32, key  # float32 master weights and moments
    rel = max(
        float((a.params[k] - b.params[k]).norm() / a.params[k].norm()) for k in a.params if a.params[k].norm() > 0
    )
    # bfloat16 (8-bit mantissa) was used; after 40 AdamW steps the weights differ by 0.1-5 %
    assert 0 < rel < 0.1
    for key in ("train_loss", "test_loss"):
        assert np.all(np.isfinite(b.curves[key]))
        np.testing.assert_allclose(b.curves[key], a.curves[key], rtol=0.01, err_msg=key)  # measured: < 0.001


def test_computing_sets_the_cuda_matmul_precision_only_inside_the_block():
    matmul = torch.backends.cuda.matmul
    before = matmul.fp32_precision
    cuda = torch.device("cuda")  # the setting is a process flag: a CPU build can set and read it too
    with computing("tf32", cuda):
        assert matmul.fp32_precision == "tf32"
    assert matmul.fp32_precision == before
    with pytest.raises(RuntimeError, match="inside"), computing("tf32", cuda):
        raise RuntimeError("inside")
    assert matmul.fp32_precision == before
    with computing("fp32", cuda), computing("bf16", cuda):
        assert matmul.fp32_precision == "ieee"  # bf16 autocasts; float32 products stay IEEE
    with pytest.raises(ValueError, match="precision: 'fp16' is not one of fp32, tf32, bf16"), computing("fp16", cuda):
        pass


def test_the_config_key_reaches_the_engine_and_lists_every_precision(repo_root):
    from grokking.runspec import SCHEMA_PATH

    schema = yaml.safe_load(open(SCHEMA_PATH))
    assert schema["$defs"]["run_settings"]["properties"]["precision"]["enum"] == list(PRECISIONS)
    cfg = yaml.safe_load(open(repo_root / "config" / "config.yaml"))
    assert cfg["run_defaults"]["precision"] == "fp32"
    assert stack_settings(resolve(cfg, {"precision": "bf16"})).precision == "bf16"
