"""What a service process leaves out of memory: optional parts its libraries import eagerly,
and memory glibc's malloc would keep (:func:`tune_malloc`).

Each service's ``__main__`` imports this module first, before anything imports httpx: httpx
imports its command-line client (click, rich, pygments) whenever those are installed, and rich
is installed for ``scripts/demo``. That is about 5 MB of RSS per process (``bench/footprint.py``)
for a client no service runs. httpx's ``__init__`` treats an ``ImportError`` of the client as
"the ``httpx[cli]`` extra is not installed", so blocking the one module is enough.

(PyJWT's optional ``cryptography`` is left out where it is imported: ``shared.auth``.)
"""

from __future__ import annotations

import ctypes
import os
import sys

sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]


# glibc's ``mallopt`` parameters (malloc.h).
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MALLOC_DEFAULTS = {"MALLOC_ARENA_MAX": ("2", M_ARENA_MAX), "MALLOC_MMAP_THRESHOLD_": ("32768", M_MMAP_THRESHOLD)}
"""glibc's own environment variables, with what a service process uses unless they are set."""


def set_malloc_option(param: int, value: int) -> bool:
    """glibc's ``mallopt(param, value)``; False where it is not available (not glibc)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return bool(ctypes.CDLL(None).mallopt(param, value))
    except (OSError, AttributeError):
        return False


def tune_malloc() -> bool:
    """Two malloc arenas and a fixed 32 KiB ``mmap`` threshold, in this process and (through
    the environment, which glibc reads at start) in the workers it starts. For a service
    whose large blocks are short-lived: the products service (its ``__main__``).

    glibc raises its ``mmap`` threshold to the size of the last large block freed, up to
    32 MiB, and keeps freed memory below twice that; past that, large short-lived blocks come
    from the heap and what they leave behind stays there. The products service reads, parses
    and writes back whole product documents, and a product holding a few hundred pending
    reservation lines is 60 KB of JSON, through Python and SQLite, on every stock write and
    page read: its RSS grew 17 % over a 10-minute soak. With the threshold fixed, blocks of
    32 KiB and more are mapped and unmapped (a system call pair, only for blocks that large)
    and the heap gives back what it frees; two arenas instead of one per thread (up to eight
    per core) keep what threads free reusable by the others. Not for the account services:
    there the moving threshold keeps Argon2id's 19 MiB buffer mapped between hashes, and
    giving it back costs a third of the logins per second (page faults on every hash).
    """
    applied = True
    for name, (default, param) in MALLOC_DEFAULTS.items():
        value = int(os.environ.setdefault(name, default))
        applied = set_malloc_option(param, value) and applied
    return applied
