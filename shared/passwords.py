"""Password hashing with bcrypt, always in a worker thread so a login never stalls the loop.

The workers are a dedicated pool of one thread per core running at a lower scheduling
priority (nice +10): bcrypt still uses every idle core, but the event-loop thread wins
the CPU whenever it has work, so ``/health`` stays fast while logins run.

bcrypt silently ignores bytes past 72, so longer passwords are refused before hashing
(:func:`too_long`). Unknown users are checked against a fixed dummy hash
(:func:`verify_dummy`) so both paths of a login take the same time.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import bcrypt

T = TypeVar("T")

MAX_PASSWORD_BYTES = 72
WORKER_NICENESS = 10


def _lower_priority() -> None:
    # Linux schedules threads individually, so this lowers only the worker thread.
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICENESS)


_pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="bcrypt", initializer=_lower_priority)


async def _in_pool(func: Callable[..., T], *args: object) -> T:
    return await asyncio.get_running_loop().run_in_executor(_pool, func, *args)


def too_long(password: str) -> bool:
    """True when ``password`` is over bcrypt's 72-byte limit in UTF-8."""
    return len(password.encode("utf-8")) > MAX_PASSWORD_BYTES


def _hash(password: str, rounds: int) -> str:
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(rounds)).decode("ascii")


def _check(password: str, hashed: str) -> bool:
    try:
        return bcrypt.checkpw(password.encode("utf-8"), hashed.encode("ascii"))
    except ValueError:
        return False


async def hash_password(password: str, *, rounds: int = 12) -> str:
    """The bcrypt hash of ``password`` at cost ``rounds`` (computed off the event loop)."""
    if too_long(password):
        raise ValueError("password exceeds 72 bytes")
    return await _in_pool(_hash, password, rounds)


async def verify_password(password: str, hashed: str) -> bool:
    """True when ``password`` matches ``hashed`` (checked off the event loop)."""
    if too_long(password):
        return False
    return await _in_pool(_check, password, hashed)


@functools.cache
def _dummy_hash(rounds: int) -> str:
    return _hash("dummy-password-for-timing", rounds)


async def verify_dummy(password: str, *, rounds: int = 12) -> bool:
    """Spend one bcrypt check of cost ``rounds`` and return False (unknown-user path)."""
    dummy = await _in_pool(_dummy_hash, rounds)
    await _in_pool(_check, password[:72], dummy)
    return False
