"""MNIST's four IDX files (docs/paper.md §A3 h, Fig 16): found in one directory or downloaded into it once,
checked against their published SHA-256, and read by our own IDX parser.

The directory is ``data.mnist.dir`` of the config (default ``default_dir()``, shared by the presets).
Each file may be there gzipped, as distributed, or decompressed; either form is checked against the
published SHA-256 of that form before it is used. A missing file is downloaded (gzipped) by pooch, the
library for hashed downloads that result bundles use too (:mod:`grokking.bundle`): into a temporary file
beside its final name, checked against the published SHA-256, and only then renamed into place; a valid
file is never fetched again and a bad or partial download never appears under the final name.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class IdxFile:
    """One of the four files: its decompressed name, the SHA-256 of the ``.gz`` and of the decompressed
    file, and the array it holds."""

    name: str
    gz_sha256: str
    sha256: str
    shape: tuple


FILES = {
    "train_images": IdxFile(
        "train-images-idx3-ubyte",
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        (60000, 28, 28),
    ),
    "train_labels": IdxFile(
        "train-labels-idx1-ubyte",
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        (60000,),
    ),
    "test_images": IdxFile(
        "t10k-images-idx3-ubyte",
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        (10000, 28, 28),
    ),
    "test_labels": IdxFile(
        "t10k-labels-idx1-ubyte",
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        (10000,),
    ),
}
# The original host (yann.lecun.com) no longer serves the files reliably; these mirrors serve the same
# bytes (the checksums above decide).
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
DOWNLOAD_TIMEOUT_S = 30

# IDX type codes (the third byte of the magic number) and their big-endian element types.
IDX_TYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class IdxFormatError(ValueError):
    """A file that is not a complete IDX file (bad magic, truncated, trailing bytes)."""


class ChecksumError(ValueError):
    """A file whose SHA-256 is not the published one."""


class MnistUnavailable(RuntimeError):
    """The files are neither in the directory nor downloadable."""


def default_dir() -> Path:
    """``$XDG_CACHE_HOME/grok-or-not/mnist`` (``~/.cache/...`` when the variable is unset)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "grok-or-not" / "mnist"


def sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """The array of an IDX file's bytes (native byte order). The size must match the header exactly."""
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] not in IDX_TYPES or data[3] == 0:
        raise IdxFormatError(
            f"{source}: not an IDX file (magic {data[:4].hex() or 'missing'}; expected 00 00, a type code "
            f"({', '.join(f'{c:02x}' for c in IDX_TYPES)}) and the number of dimensions)"
        )
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IdxFormatError(f"{source}: truncated header ({len(data)} bytes, {ndim} dimensions need {header})")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(IDX_TYPES[data[2]])
    expected = header + dtype.itemsize * math.prod(dims)
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "trailing bytes"
        raise IdxFormatError(
            f"{source}: {what}: {len(data)} bytes, but its header ({'x'.join(map(str, dims))} of {dtype.name}) "
            f"needs {expected}"
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def read_idx(path) -> np.ndarray:
    """Read an IDX file, gzipped (``.gz``) or not."""
    path = Path(path)
    data = path.read_bytes()
    if path.suffix == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as err:
            raise IdxFormatError(f"{path}: not a complete gzip file ({err})") from err
    return parse_idx(data, str(path))


def _check(path: Path, expected: str):
    got = sha256_of(path)
    if got != expected:
        raise ChecksumError(
            f"{path}: SHA-256 {got}, expected {expected} (the published checksum): the file is corrupt or "
            "not the published one; delete it to download it again, or replace it"
        )


def _download(url: str, dest: Path, expected: str):
    """Fetch ``url`` into ``dest`` through pooch, kept only if its SHA-256 is ``expected``. A wrong file raises
    :class:`ChecksumError`; an unreachable or refused URL, ``requests``' errors (an ``OSError``)."""
    import pooch

    try:
        pooch.retrieve(
            url,
            known_hash=f"sha256:{expected}",
            fname=dest.name,
            path=dest.parent,
            downloader=pooch.HTTPDownloader(timeout=DOWNLOAD_TIMEOUT_S),  # http(s) only, whatever the URL says
        )
    except ValueError as err:  # pooch's hash check: the download was deleted
        raise ChecksumError(f"{url}: SHA-256 of the download is not the published {expected} ({err})") from err


def locate(directory=None, download: bool = True, files=None, mirrors=MIRRORS) -> dict[str, Path]:
    """Path of each file (key of ``FILES``) in ``directory``, checked; missing ones downloaded first."""
    directory = Path(directory) if directory else default_dir()
    files = FILES if files is None else files
    found, missing = {}, []
    for key, f in files.items():
        raw, gz = directory / f.name, directory / f"{f.name}.gz"
        if raw.exists():
            _check(raw, f.sha256)
            found[key] = raw
        elif gz.exists():
            _check(gz, f.gz_sha256)
            found[key] = gz
        else:
            missing.append(key)
    if not missing:
        return found
    names = ", ".join(f"{files[k].name}.gz" for k in files)
    where = (
        f"Put the four files ({names}; gzipped as distributed or decompressed) in {directory}, "
        "or set data.mnist.dir to the directory that holds them."
    )
    if not download:
        raise MnistUnavailable(f"MNIST: {', '.join(files[k].name for k in missing)} not in {directory}. {where}")
    for key in missing:
        f, dest = files[key], directory / f"{files[key].name}.gz"
        errors = []
        wrong = 0  # mirrors that served a file with another checksum
        for mirror in mirrors:
            try:
                _download(f"{mirror}{f.name}.gz", dest, f.gz_sha256)
                break
            except ChecksumError as err:
                errors.append(str(err))
                wrong += 1
            except OSError as err:  # requests' connection, timeout, HTTP and scheme errors included
                errors.append(f"{mirror}{f.name}.gz: {err}")
        else:
            if errors and wrong == len(errors):
                raise ChecksumError("MNIST: every mirror served a wrong file:\n  " + "\n  ".join(errors))
            raise MnistUnavailable(
                f"MNIST: cannot download {f.name}.gz and it is not in {directory}. {where}\n  " + "\n  ".join(errors)
            )
        found[key] = dest
    return found


def load(directory=None, download: bool = True, files=None, mirrors=MIRRORS) -> dict[str, np.ndarray]:
    """The four arrays (``train_images`` [60000, 28, 28] uint8, ``train_labels`` [60000] uint8, ...)."""
    files = FILES if files is None else files
    arrays = {}
    for key, path in locate(directory, download, files, mirrors).items():
        arrays[key] = read_idx(path)
        if arrays[key].shape != files[key].shape:
            raise IdxFormatError(f"{path}: shape {arrays[key].shape}, expected {files[key].shape}")
    return arrays
