"""Figure notebooks are executed with their kernel on private Unix sockets (``grokking.report.execute``):
over TCP, figure jobs started side by side could take each other's ports ("Address already in use")."""

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from grokking.report.execute import execute_notebook, socket_folder

REPORTER = """
import json
from ipykernel.connect import get_connection_info
info = get_connection_info(unpack=True)
with open(out, "w") as fh:
    json.dump({"transport": info["transport"], "ip": info["ip"], "value": value}, fh)
"""


def notebook(path: Path, body: str) -> Path:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("out = None\nvalue = 0")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.mark.skipif(os.name != "posix", reason="Unix domain sockets are a POSIX transport")
def test_the_kernel_listens_on_sockets_in_a_folder_of_its_own_removed_afterwards(tmp_path):
    nb = notebook(tmp_path / "in.ipynb", REPORTER)
    out = tmp_path / "info.json"
    execute_notebook(nb, tmp_path / "out.ipynb", {"out": str(out), "value": 7}, tmp_path)
    info = json.loads(out.read_text())
    assert info["value"] == 7  # the parameters were injected
    assert info["transport"] == "ipc", "the kernel listens on TCP ports, which a concurrent job can take"
    folder = Path(info["ip"]).parent
    assert folder.name.startswith("grokking-kernel-") and not folder.exists()


def test_over_tcp_when_asked(tmp_path):
    nb = notebook(tmp_path / "in.ipynb", REPORTER)
    out = tmp_path / "info.json"
    execute_notebook(nb, tmp_path / "out.ipynb", {"out": str(out)}, tmp_path, ipc=False)
    assert json.loads(out.read_text())["transport"] == "tcp"


def test_the_socket_folder_fits_a_socket_path_when_tmpdir_is_long(tmp_path, monkeypatch):
    import tempfile

    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    monkeypatch.setattr(tempfile, "tempdir", str(deep))
    folder = socket_folder()
    try:
        assert len(folder) + len("/kernel-65535") <= 100 and Path(folder).is_dir()
    finally:
        os.rmdir(folder)


def test_a_failing_cell_exits_1_naming_the_notebook_and_the_error(tmp_path):
    nb = notebook(tmp_path / "bad.ipynb", "raise ValueError('no such grid: g9')")
    res = subprocess.run(
        [sys.executable, "-m", "grokking", "notebook", str(nb), str(tmp_path / "out.ipynb"), "--parameters", "{}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert res.returncode == 1
    assert f"error: {nb}" in res.stderr and "ValueError: no such grid: g9" in res.stderr
