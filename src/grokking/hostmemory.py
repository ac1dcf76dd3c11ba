"""Large host tensors without a page fault each time they are allocated.

glibc's malloc serves every block above its mmap threshold (at most 32 MiB) with a fresh ``mmap`` and hands
it back to the system when it is freed. A training or log step at the paper's shapes allocates temporaries of
hundreds of MiB (gathered activations, logits, gradients) and frees them again, so each step pays one page
fault per 4 KiB page and the kernel's zeroing of the page, every time: on the width-5000 grid chunks that was
more system time than arithmetic. :func:`reuse_freed_memory` has malloc serve every block from its heap and
keep what is freed for the next allocation. A process's peak memory is unchanged (it is the same blocks at
their largest); its resident memory no longer shrinks after the peak, which a job that ends soon after does
not need. Compute jobs apply it as they start (``python -m grokking``), the benchmarks too, so that they time
what the jobs run. It changes no result: only where the bytes live.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # mallopt parameters (glibc's malloc.h)


def reuse_freed_memory() -> bool:
    """Serve every allocation of this process from malloc's heap and keep freed memory there (glibc's
    ``mallopt``: no mmap'd blocks, no trimming). True where applied; False where the C library is not glibc."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1))
