"""MNIST files: the IDX reader on files the tests write, the checked download into the cache (through pooch,
from a mirror served over HTTP on 127.0.0.1), and the errors for corrupt, mismatching and unreachable files."""

from __future__ import annotations

import gzip
import hashlib

import numpy as np
import pytest
from local_http import serve, unreachable_url

from grokking.data import mnist


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file written from the format's definition: 00 00, type code, ndim, big-endian uint32 dims,
    big-endian data."""
    code = {np.dtype("u1"): 0x08, np.dtype("i1"): 0x09, np.dtype("i2"): 0x0B, np.dtype("i4"): 0x0C}
    code |= {np.dtype("f4"): 0x0D, np.dtype("f8"): 0x0E}
    header = bytes([0, 0, code[array.dtype.newbyteorder("=")], array.ndim])
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


@pytest.mark.parametrize(
    "array",
    [
        np.arange(300 * 3 * 2, dtype=np.uint8).reshape(300, 3, 2),  # a dimension above 255: big-endian dims
        np.array([[-70000, 1], [2, 70000]], dtype=np.int32),  # multi-byte big-endian elements
        np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4),
        np.arange(5, dtype=np.int16) - 2,
    ],
)
def test_idx_reader_reads_what_the_format_says(tmp_path, array):
    path = tmp_path / "a-idx"
    path.write_bytes(idx_bytes(array))
    got = mnist.read_idx(path)
    assert got.shape == array.shape and got.dtype == array.dtype.newbyteorder("=")
    assert got.dtype.isnative
    np.testing.assert_array_equal(got, array)
    gz = tmp_path / "a-idx.gz"
    gz.write_bytes(gzip.compress(idx_bytes(array)))
    np.testing.assert_array_equal(mnist.read_idx(gz), array)


def test_idx_reader_refuses_truncated_padded_and_foreign_files(tmp_path):
    good = idx_bytes(np.zeros((10, 28, 28), dtype=np.uint8))
    for name, data, message in [
        ("truncated", good[:-1], "truncated: 7855 bytes, but its header (10x28x28 of uint8) needs 7856"),
        ("header", good[:9], "truncated header"),
        ("padded", good + b"\0", "trailing bytes"),
        ("magic", b"\x1f\x8b" + good[2:], "not an IDX file (magic 1f8b0803"),
        ("type", good[:2] + b"\x07" + good[3:], "not an IDX file"),
        ("empty", b"", "magic missing"),
    ]:
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(mnist.IdxFormatError, match=message.replace("(", r"\(").replace(")", r"\)")):
            mnist.read_idx(path)
    cut = tmp_path / "cut.gz"
    cut.write_bytes(gzip.compress(good)[:-20])
    with pytest.raises(mnist.IdxFormatError, match="not a complete gzip file"):
        mnist.read_idx(cut)


@pytest.fixture
def mirror(tmp_path):
    """Four small IDX files with their own checksums, served over HTTP from a local "mirror" folder:
    (folder, files, mirror URL)."""
    root = tmp_path / "mirror"
    root.mkdir()
    files = {}
    for key, shape in [("train_images", (6, 2, 2)), ("train_labels", (6,)), ("test_images", (3, 2, 2))]:
        raw = idx_bytes(np.arange(np.prod(shape), dtype=np.uint8).reshape(shape))
        gz = gzip.compress(raw, mtime=0)
        name = f"fake-{key}"
        (root / f"{name}.gz").write_bytes(gz)
        files[key] = mnist.IdxFile(name, hashlib.sha256(gz).hexdigest(), hashlib.sha256(raw).hexdigest(), shape)
    raw = idx_bytes(np.array([1, 2, 3], dtype=np.uint8))
    (root / "fake-test_labels.gz").write_bytes(gzip.compress(raw, mtime=0))
    files["test_labels"] = mnist.IdxFile(
        "fake-test_labels", hashlib.sha256(gzip.compress(raw, mtime=0)).hexdigest(), "", (3,)
    )
    with serve(root) as url:
        yield root, files, url


def test_download_is_checked_cached_and_never_repeated(tmp_path, mirror):
    root, files, url = mirror
    cache = tmp_path / "cache"
    arrays = mnist.load(cache, files=files, mirrors=(url,))
    assert {k: a.shape for k, a in arrays.items()} == {k: f.shape for k, f in files.items()}
    np.testing.assert_array_equal(arrays["test_labels"], [1, 2, 3])
    assert sorted(p.name for p in cache.iterdir()) == sorted(f"{f.name}.gz" for f in files.values())
    for f in files.values():  # the bytes the mirror served, kept under their final names
        assert (cache / f"{f.name}.gz").read_bytes() == (root / f"{f.name}.gz").read_bytes()
    # once valid, the cache is used as it is: no mirror needed
    for f in root.iterdir():
        f.unlink()
    again = mnist.load(cache, files=files, mirrors=(unreachable_url(),))
    np.testing.assert_array_equal(again["train_images"], arrays["train_images"])


def test_an_unreachable_mirror_falls_through_to_the_next(tmp_path, mirror):
    _, files, url = mirror
    paths = mnist.locate(tmp_path / "cache", files=files, mirrors=(unreachable_url(), url))
    assert sorted(paths) == sorted(files) and all(p.exists() for p in paths.values())


def test_checksum_mismatch_fails_and_leaves_nothing(tmp_path, mirror):
    _, files, url = mirror
    files["train_labels"] = mnist.IdxFile("fake-train_labels", "0" * 64, "", (6,))
    cache = tmp_path / "cache"
    with pytest.raises(mnist.ChecksumError, match="every mirror served a wrong file") as err:
        mnist.locate(cache, files=files, mirrors=(url,))
    assert f"{url}fake-train_labels.gz: SHA-256 of the download is not the published {'0' * 64}" in str(err.value)
    assert not list(cache.glob("fake-train_labels*"))  # no partial or wrong file under any name
    assert sorted(p.name for p in cache.iterdir()) == ["fake-train_images.gz"]  # only what was fetched before


def test_a_corrupt_file_in_the_directory_is_named(tmp_path, mirror):
    _, files, url = mirror
    cache = tmp_path / "cache"
    mnist.locate(cache, files=files, mirrors=(url,))
    bad = cache / "fake-test_images.gz"
    bad.write_bytes(bad.read_bytes()[:-1])
    with pytest.raises(mnist.ChecksumError, match=f"{bad}: SHA-256 .* delete it to download it again"):
        mnist.locate(cache, files=files, mirrors=())


def test_offline_without_files_names_the_four_files_and_where_they_go(tmp_path):
    cache = tmp_path / "cache"
    offline = unreachable_url()
    with pytest.raises(mnist.MnistUnavailable) as err:
        mnist.locate(cache, mirrors=(offline,))
    message = str(err.value)
    for f in mnist.FILES.values():
        assert f"{f.name}.gz" in message
    assert str(cache) in message and "data.mnist.dir" in message
    assert f"{offline}{mnist.FILES['train_images'].name}.gz: " in message  # why that mirror failed
    assert not cache.exists() or not list(cache.iterdir())


def test_decompressed_files_are_checked_against_their_own_checksum(tmp_path, mirror):
    root, files, url = mirror
    cache = tmp_path / "cache"
    for f in files.values():
        if f.sha256:  # a user's decompressed copy
            (cache / f.name).parent.mkdir(parents=True, exist_ok=True)
            (cache / f.name).write_bytes(gzip.decompress((root / f"{f.name}.gz").read_bytes()))
    paths = mnist.locate(cache, files=files, mirrors=(url,))
    assert paths["train_images"].name == "fake-train_images" and paths["test_labels"].suffix == ".gz"
    (cache / "fake-train_labels").write_bytes(b"\0\0\x08\x01\0\0\0\0")
    with pytest.raises(mnist.ChecksumError, match="fake-train_labels: SHA-256"):
        mnist.locate(cache, files=files, mirrors=())
