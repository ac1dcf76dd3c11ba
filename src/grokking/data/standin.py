"""Stand-in MNIST files for a rehearsal of the paper preset (``make rehearse``; these machines have no network).

Four IDX files of MNIST's exact names, shapes and types (60,000 + 10,000 images of 28x28 ``uint8``, labels 0-9),
of seeded random content, written decompressed beside a manifest (``standin.json``) of their SHA-256. A rehearsal
reads them through the real reader (:func:`grokking.data.mnist.load`, with the manifest's checksums in place of
the published ones), so the IDX parsing, the checks and everything after them run as they do on MNIST.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..atomic import write_bytes
from .mnist import FILES, IdxFile, sha256_of

MANIFEST = "standin.json"
_TYPE_CODES = {np.dtype("u1"): 0x08}  # MNIST's files hold unsigned bytes only


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of an unsigned-byte array: magic (00 00, type, dimensions), big-endian sizes, data."""
    array = np.ascontiguousarray(array)
    if array.dtype not in _TYPE_CODES:
        raise ValueError(f"idx_bytes: dtype {array.dtype} is not one of {sorted(map(str, _TYPE_CODES))}")
    header = bytes([0, 0, _TYPE_CODES[array.dtype], array.ndim])
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


def write_standin(directory, seed: int = 0) -> dict:
    """Write the four stand-in files and their manifest into ``directory``; return the manifest."""
    directory = Path(directory)
    rng = np.random.default_rng(seed)
    manifest = {"standin": True, "seed": int(seed), "files": {}}
    for key, f in FILES.items():
        if key.endswith("images"):
            array = rng.integers(0, 256, size=f.shape, dtype=np.uint8)
        else:
            array = rng.integers(0, 10, size=f.shape, dtype=np.uint8)
        path = directory / f.name
        write_bytes(path, idx_bytes(array))
        manifest["files"][key] = {"name": f.name, "shape": list(f.shape), "sha256": sha256_of(path)}
    write_bytes(directory / MANIFEST, (json.dumps(manifest, indent=1) + "\n").encode())
    return manifest


def standin_files(directory) -> dict[str, IdxFile]:
    """The files of a stand-in directory as :class:`IdxFile` records with the manifest's checksums (the
    argument ``files`` of :func:`grokking.data.mnist.load`)."""
    path = Path(directory) / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"{path}: no stand-in manifest (stand-in MNIST files are made by `make rehearse`)")
    entries = json.loads(path.read_text())["files"]
    return {
        key: IdxFile(e["name"], gz_sha256="", sha256=e["sha256"], shape=tuple(e["shape"])) for key, e in entries.items()
    }
