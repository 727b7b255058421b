"""Password hashing with pwdlib: Argon2id for new hashes, bcrypt still verified.

New hashes are Argon2id at OWASP's parameters (m = 19 MiB, t = 2, p = 1): about a tenth of
the CPU of bcrypt at cost 12, so a login rush is served instead of queued. Hashes made
before (``$2b$``) still verify; :func:`verify_and_update` answers the Argon2id replacement
to store after a successful check, so accounts move to the new scheme on their next login.

Every hash and check runs in a dedicated pool of one thread per core at a lower scheduling
priority (nice +10): the work uses every idle core (argon2-cffi and bcrypt release the GIL),
but the event-loop thread wins the CPU whenever it has work, so ``/health`` stays fast while
logins run.

bcrypt silently ignores bytes past 72, so longer passwords are refused before hashing
(:func:`too_long`) whatever the scheme, as the contracts say. Unknown users are checked
against a fixed dummy hash (:func:`verify_dummy`) so both paths of a login cost the same.

``rounds=`` (the ``BCRYPT_ROUNDS`` setting) asks for a legacy bcrypt hash of that cost; the
services no longer pass it, tests use it to make old-style hashes.
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

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher

T = TypeVar("T")

MAX_PASSWORD_BYTES = 72
WORKER_NICENESS = 10

# OWASP Password Storage Cheat Sheet, Argon2id minimum: 19 MiB of memory, 2 iterations, 1 lane.
ARGON2_MEMORY_KIB = 19 * 1024
ARGON2_TIME_COST = 2
ARGON2_PARALLELISM = 1

_password_hash = PasswordHash(
    (
        Argon2Hasher(time_cost=ARGON2_TIME_COST, memory_cost=ARGON2_MEMORY_KIB, parallelism=ARGON2_PARALLELISM),
        BcryptHasher(),
    )
)
"""Hashes with the first hasher (Argon2id); verifies with any of them."""


def _lower_priority() -> None:
    # Linux schedules threads individually, so this lowers only the worker thread.
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICENESS)


_pool = ThreadPoolExecutor(
    max_workers=os.cpu_count() or 2, thread_name_prefix="password", initializer=_lower_priority
)


async def _in_pool(func: Callable[..., T], *args: object) -> T:
    return await asyncio.get_running_loop().run_in_executor(_pool, func, *args)


def too_long(password: str) -> bool:
    """True when ``password`` is over bcrypt's 72-byte limit in UTF-8."""
    return len(password.encode("utf-8")) > MAX_PASSWORD_BYTES


def _hash(password: str, rounds: int | None) -> str:
    if rounds is None:
        return _password_hash.hash(password)
    return BcryptHasher(rounds=rounds).hash(password)


def _check(password: str, hashed: str) -> bool:
    try:
        return _password_hash.verify(password, hashed)
    except Exception:  # an unknown or damaged hash never matches
        return False


def _check_and_update(password: str, hashed: str) -> tuple[bool, str | None]:
    try:
        return _password_hash.verify_and_update(password, hashed)
    except Exception:
        return False, None


async def hash_password(password: str, *, rounds: int | None = None) -> str:
    """The Argon2id hash of ``password`` (computed off the event loop).

    With ``rounds``: a legacy bcrypt hash of that cost instead (tests, old data).
    """
    if too_long(password):
        raise ValueError("password exceeds 72 bytes")
    return await _in_pool(_hash, password, rounds)


async def verify_password(password: str, hashed: str) -> bool:
    """True when ``password`` matches ``hashed`` (Argon2id or bcrypt; checked off the loop)."""
    if too_long(password):
        return False
    return await _in_pool(_check, password, hashed)


async def verify_and_update(password: str, hashed: str) -> tuple[bool, str | None]:
    """Check ``password`` against ``hashed``; answer ``(matches, new_hash)``.

    ``new_hash`` is an Argon2id hash to store in place of ``hashed`` when the password
    matched and ``hashed`` is of an older scheme or weaker parameters; otherwise None.
    """
    if too_long(password):
        return False, None
    return await _in_pool(_check_and_update, password, hashed)


@functools.cache
def _dummy_hash(rounds: int | None) -> str:
    return _hash("dummy-password-for-timing", rounds)


async def verify_dummy(password: str, *, rounds: int | None = None) -> bool:
    """Spend one check as costly as a real login's and return False (unknown-user path).

    ``rounds`` checks against a bcrypt hash of that cost instead of an Argon2id one.
    """
    dummy = await _in_pool(_dummy_hash, rounds)
    await _in_pool(_check, password[:MAX_PASSWORD_BYTES], dummy)
    return False
