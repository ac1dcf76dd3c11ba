"""Train a small stack of each model family and print the SHA-256 of its final weights (JSON).

Run as a script in a fresh process (``tests/test_numerics.py``): the numeric profile is chosen by the
environment, which must be in place before torch is imported.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402

from grokking import numerics  # noqa: E402
from grokking.data import Universe  # noqa: E402
from grokking.engine import ModelSettings, StackSettings, train  # noqa: E402
from grokking.models.deep_mlp import DeepMLPShape  # noqa: E402
from grokking.models.mlp2 import MLPShape  # noqa: E402
from grokking.models.transformer import TransformerShape  # noqa: E402

# family -> (p, shape, steps, batch size): small, but every kind of kernel the presets use (matmuls,
# batched matmuls, softmax attention, BatchNorm, dropout, AdamW, FFT-based IPR in the log steps)
STACKS = {
    "mlp2": (31, MLPShape(p=31, width=64), 100, None),
    "mlp2_relu_batchnorm_minibatch": (31, MLPShape(p=31, width=64, activation="relu", norm="batchnorm"), 60, 64),
    "transformer": (17, TransformerShape(17, 32, 4, 1), 60, None),
    "deep_mlp_batchnorm": (31, DeepMLPShape(p=31, width=64, depth=3, norm="batchnorm"), 100, None),
}


def weights_hash(params: dict) -> str:
    h = hashlib.sha256()
    for name in sorted(params):
        h.update(name.encode())
        h.update(params[name].detach().contiguous().numpy().tobytes())
    return h.hexdigest()


def main():
    torch.set_num_threads(1)
    numerics.apply_deterministic()  # as a job does: the environment may ask for the deterministic mode
    out = {}
    for name, (p, shape, steps, batch) in STACKS.items():
        split = Universe.build("add", p).split(0.5)
        settings = StackSettings(shape, steps=steps, batch_size=batch, log_steps=(1, steps // 2, steps))
        models = [
            ModelSettings(corruption=0.2, weight_decay=1.0, dropout=0.1, lr=3e-3, seed=1),
            ModelSettings(corruption=0.3, weight_decay=0.0, dropout=0.0, lr=1e-3, seed=2),
        ]
        res = train(split, settings, models, device="cpu", progress=False)
        out[name] = weights_hash(res.params)
    print(json.dumps({"hashes": out, "numerics": numerics.describe("cpu")}, sort_keys=True))


if __name__ == "__main__":
    main()
