"""Password hashing with bcrypt, always in a worker thread so a login never stalls the loop.

bcrypt silently ignores bytes past 72, so longer passwords are refused before hashing
(:func:`too_long`). Unknown users are checked against a fixed dummy hash
(:func:`verify_dummy`) so both paths of a login take the same time.
"""

from __future__ import annotations

import functools

import anyio.to_thread
import bcrypt

MAX_PASSWORD_BYTES = 72


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
    return await anyio.to_thread.run_sync(_hash, password, rounds)


async def verify_password(password: str, hashed: str) -> bool:
    """True when ``password`` matches ``hashed`` (checked off the event loop)."""
    if too_long(password):
        return False
    return await anyio.to_thread.run_sync(_check, password, hashed)


@functools.cache
def _dummy_hash(rounds: int) -> str:
    return _hash("dummy-password-for-timing", rounds)


async def verify_dummy(password: str, *, rounds: int = 12) -> bool:
    """Spend one bcrypt check of cost ``rounds`` and return False (unknown-user path)."""
    dummy = await anyio.to_thread.run_sync(_dummy_hash, rounds)
    await anyio.to_thread.run_sync(_check, password[:72], dummy)
    return False
