"""Keep the C allocator from returning freed memory to the system between coding steps (glibc only).

glibc serves blocks above ``M_MMAP_THRESHOLD`` (128 KiB to start with) by ``mmap`` and gives the top of the heap
back above ``M_TRIM_THRESHOLD``; the tokenizer's activations and the entropy coder's per-step arrays are exactly
such blocks, allocated and freed again for every latent frame, so each step faulted its memory back in. Measured on
this project's 2-core machine (a 17-frame 416x240 window, 2 threads, 3 alternating runs each): decoding 1.00-1.06 s
with glibc's defaults, 0.66-0.87 s with the thresholds below, peak RSS the same. The ``vcodec`` command sets them
at start; a library user can call :func:`keep_freed_memory` (or set glibc's ``MALLOC_*`` variables).
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
TRIM_THRESHOLD = 256 << 20  # freed memory kept by the process (at most this much at the heap top)
MMAP_THRESHOLD = 32 << 20  # blocks below this come from the heap (glibc's largest allowed value on 64-bit)


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process; True if set. Does nothing (False) off glibc, when
    the user set ``MALLOC_TRIM_THRESHOLD_`` / ``MALLOC_MMAP_THRESHOLD_`` themselves, or with
    ``VCODEC_MALLOC=system``."""
    if not sys.platform.startswith("linux") or os.environ.get("VCODEC_MALLOC") == "system":
        return False
    if any(k in os.environ for k in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_")):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own C library (no search for it at start-up)
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
