"""Execute a figure notebook with papermill, its kernel reached over sockets no other job can take.

Over TCP, jupyter_client picks a kernel's five ports by asking the system for free ones and letting them go,
and the kernel binds them a moment later: when several notebooks start at once (``snakemake --cores N``),
another job's kernel can take one of those ports in between, and the kernel dies with "Address already in
use". On POSIX systems the kernel here listens on Unix domain sockets in a temporary folder of its own
(jupyter_client's ``ipc`` transport), so concurrent figure jobs cannot collide; elsewhere it uses TCP.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# A Unix socket's path must fit in 108 bytes (Linux; 104 on macOS), the folder and "kernel-<port>" included.
SOCKET_PATH_MAX = 100


def socket_folder() -> str:
    """A new private folder for the kernel's sockets: under ``$TMPDIR``, or ``/tmp`` where that path is too long
    for a socket (a cluster's per-job ``$TMPDIR`` can be)."""
    folder = tempfile.mkdtemp(prefix="grokking-kernel-")
    if len(folder) + len("/kernel-65535") > SOCKET_PATH_MAX:
        os.rmdir(folder)
        folder = tempfile.mkdtemp(prefix="grokking-kernel-", dir="/tmp")
    return folder


def kernel_config(folder: str | None):
    """The kernel manager's settings: IPC sockets in ``folder``, or jupyter_client's defaults (TCP) if None."""
    from traitlets.config import Config

    config = Config()
    if folder is not None:
        config.KernelManager.transport = "ipc"
        config.KernelManager.ip = str(Path(folder) / "kernel")
    return config


def execute_notebook(notebook, output, parameters: dict, cwd, kernel: str = "python3", ipc: bool | None = None):
    """Run ``notebook`` with ``parameters`` injected, in ``cwd``, writing the executed copy to ``output``;
    papermill's ``PapermillExecutionError`` (naming the failing cell) propagates. ``ipc``: use the private
    socket folder (default: on POSIX systems)."""
    import shutil

    import papermill

    ipc = os.name == "posix" if ipc is None else ipc
    folder = socket_folder() if ipc else None
    try:
        papermill.execute_notebook(
            str(notebook),
            str(output),
            parameters=parameters,
            kernel_name=kernel,
            cwd=str(cwd),
            progress_bar=False,
            config=kernel_config(folder),
        )
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
