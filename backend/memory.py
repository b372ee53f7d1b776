"""Give freed memory back to the operating system after large image work.

glibc's malloc serves big buffers with mmap and unmaps them on free, but each such free
raises its mmap threshold (up to 32 MiB), so the next large images land on the heap and
stay there: a backend that decoded four 6320x6320 references kept ~1.9 GB. Pinning the
threshold keeps big buffers on mmap, and malloc_trim hands back what the heap freed.
Both are glibc calls; elsewhere (macOS, musl) they are skipped.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
MMAP_THRESHOLD_BYTES = 1024 * 1024  # image rows and Pillow's 16 MiB blocks are far larger


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


_LIBC = _libc()


def pin_mmap_threshold() -> bool:
    """Serve allocations over 1 MiB with mmap for good (True when glibc took it)."""
    if _LIBC is None:
        return False
    return bool(_LIBC.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))


def release_to_os() -> None:
    """Return the heap's free pages to the system (glibc malloc_trim)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
