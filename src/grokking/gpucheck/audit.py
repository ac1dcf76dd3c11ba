"""What the device guard (:mod:`.guard`) trains: every model family and training path of the engine, a few
steps each, at tiny sizes (the guard checks where tensors live and when the host reads them; sizes do not
change that). tests/test_device_guard.py trains these cases on the ``meta`` stand-in; the GPU acceptance
check (:mod:`.syncaudit`) trains the very same cases, and the same checkpoint, pruning, run and width-job
paths, on CUDA.
"""

from __future__ import annotations

import contextlib

import numpy as np

from ..data import Universe
from ..data.images import ImageSet, build_image_set
from ..engine import ModelSettings, StackSettings
from ..models import mlp2_grads
from ..models.deep_mlp import DeepMLPShape
from ..models.mlp2 import MLPShape
from ..models.transformer import TransformerShape

P = 23  # 317 training pairs: two eval_dropout chunks, and batches larger than a block of examples
STEPS, LOG = 10, (1, 5, 10)  # 7 guarded steps per run


def modular():
    return Universe.build("add", P).split(0.6)


def digits():
    return build_image_set("digits", pool=400, pool_seed=0, label_seed=0).split(0.5)


def mnist_shaped():
    """MNIST's shape (28 x 28 images of 0..255, 10 classes, a separate test set) through the real
    dataset code, from random pixels: a few hundred images, not 70,000."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (300, 28, 28), dtype=np.uint8)
    tests = rng.integers(0, 256, (100, 28, 28), dtype=np.uint8)
    labels, test_labels = rng.integers(0, 10, 300), rng.integers(0, 10, 100)
    return ImageSet.build("mnist", images, labels, tests, test_labels, pool=300).split(0.5)


DATASETS = {"modular": modular, "digits": digits, "mnist_shaped": mnist_shaped}


def stack(dropouts=(0.3, 0.0, 0.5), same_seed=False) -> list[ModelSettings]:
    """Models that differ in everything per-model: dropout (none for one), corruption, decay, lr, seed."""
    return [
        ModelSettings(
            corruption=0.1 * k, weight_decay=0.5 * k, dropout=q, lr=1e-3 * (k + 1), seed=1 if same_seed else k + 1
        )
        for k, q in enumerate(dropouts)
    ]


def settings(shape, **kw) -> StackSettings:
    return StackSettings(shape, **{"steps": STEPS, "log_steps": LOG, **kw})


# name -> (dataset, settings, models, train kwargs, engine constants of grokking.models.mlp2_grads to set)
CASES = {
    # the 2-layer MLP's hand-written gradients, every model on the same examples (embedding-bag layout),
    # in two blocks of examples
    "mlp2 full batch, dropout": ("modular", settings(MLPShape(P, 16)), stack(), {}, {"SHARED_BLOCK_ELEMENTS": 1}),
    "mlp2 full batch, CE, eval_dropout": (
        "modular",
        settings(MLPShape(P, 16, "relu"), loss="ce", eval_dropout=True),
        stack(),
        {},
        {},
    ),
    # per-model batch orders (a batch per model), each batch in blocks; a new epoch every step
    "mlp2 minibatch, per-model orders, blocks": (
        "modular",
        settings(MLPShape(P, 16), batch_size=300),
        stack(),
        {},
        {"BLOCK_ELEMENTS": 1},
    ),
    # one batch order shared by all models: the embedding-bag layout with minibatches; sub-stacks of 2
    "mlp2 minibatch, shared order, sub-stacks": (
        "modular",
        settings(MLPShape(P, 16), batch_size=100),
        stack(same_seed=True),
        {"max_stack": 2},
        {},
    ),
    # bf16 trains the plain MLP with autograd (PyTorch has no autocast for meta: there the casts are left out)
    "mlp2 bf16, full batch, dropout (autograd)": (
        "modular",
        settings(MLPShape(P, 16), precision="bf16"),
        stack(),
        {},
        {},
    ),
    "mlp2 BatchNorm, CE, minibatch (autograd)": (
        "modular",
        settings(MLPShape(P, 16, "relu", "batchnorm"), loss="ce", batch_size=100),
        stack(),
        {},
        {},
    ),
    "mlp2 LayerNorm, MSE, eval_dropout": (
        "modular",
        settings(MLPShape(P, 16, "quadratic", "layernorm"), eval_dropout=True),
        stack(),
        {},
        {},
    ),
    "transformer, 2 layers, dropout, CE": (
        "modular",
        settings(TransformerShape(P, 16, 4, 2), loss="ce"),
        stack(),
        {},
        {},
    ),
    "transformer, tied embeddings, minibatch, eval_dropout": (
        "modular",
        settings(TransformerShape(P, 16, 2, 1, tie_embeddings=True), batch_size=100, eval_dropout=True),
        stack(),
        {},
        {},
    ),
    "deep MLP, BatchNorm, dropout on every hidden layer": (
        "modular",
        settings(DeepMLPShape(P, 16, 3, norm="batchnorm", dropout_layers="hidden"), batch_size=100),
        stack(),
        {},
        {},
    ),
    "deep MLP, quadratic, dropout on the first layer, eval_dropout": (
        "modular",
        settings(DeepMLPShape(P, 16, 4, "quadratic", dropout_layers="first"), loss="ce", eval_dropout=True),
        stack(),
        {},
        {},
    ),
    "digits, dropout on the inputs, eval_dropout": (
        "digits",
        settings(
            DeepMLPShape(2, 16, 3, inputs=64, classes=10, dropout_layers="inputs"), batch_size=50, eval_dropout=True
        ),
        stack(),
        {},
        {},
    ),
    "MNIST-shaped, depth 4, BatchNorm, CE": (
        "mnist_shaped",
        settings(DeepMLPShape(2, 32, 4, norm="batchnorm", inputs=784, classes=10), loss="ce", batch_size=50),
        stack(),
        {},
        {},
    ),
}


@contextlib.contextmanager
def engine_constants(constants: dict):
    """A case's block sizes of :mod:`grokking.models.mlp2_grads` set inside the block, restored after."""
    before = {k: getattr(mlp2_grads, k) for k in constants}
    for k, v in constants.items():
        setattr(mlp2_grads, k, v)
    try:
        yield
    finally:
        for k, v in before.items():
            setattr(mlp2_grads, k, v)
