"""How long one rate-limit hit holds the event loop: ``limits``' synchronous Redis storage (what
slowapi calls) against its asyncio one (what the gateway uses), with Redis up and with a
Redis that accepts connections and never answers (a stalled server).

A heartbeat task ticks every millisecond while hits run; the longest gap between ticks is how
long the loop could not serve anything else. Starts its own ``redis-server`` on a free
loopback port (Debian package ``redis-server``).

    python bench/ratelimit_storage.py [--hits 2000] [--timeout 0.25]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from limits import parse
from limits.aio.storage import RedisStorage as AsyncRedisStorage
from limits.aio.strategies import FixedWindowRateLimiter as AsyncFixedWindow
from limits.storage import RedisStorage
from limits.strategies import FixedWindowRateLimiter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from shared.testing import running_redis

ITEM = parse("1000000 per 900 second")


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (apt-get install -y redis-server)")
    with tempfile.TemporaryDirectory() as tmp, running_redis(binary, tmp) as url:
        yield url


@contextlib.contextmanager
def silent_server():
    """A TCP server that accepts and never answers: a stalled Redis."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    try:
        yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"
    finally:
        server.close()


class Heartbeat:
    """Ticks every millisecond; ``max_gap`` is the longest the loop was held."""

    def __init__(self) -> None:
        self.max_gap = 0.0
        self._task: asyncio.Task | None = None

    async def _run(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            self.max_gap = max(self.max_gap, now - last)
            last = now

    async def __aenter__(self) -> Heartbeat:
        self._task = asyncio.create_task(self._run())
        await asyncio.sleep(0.01)
        self.max_gap = 0.0
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


Result = tuple[list[float], float, str]


async def measure_sync(url: str, hits: int, timeout: float | None, pause: float = 0.0) -> Result:
    options = {} if timeout is None else {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    limiter = FixedWindowRateLimiter(RedisStorage(url, **options))
    times: list[float] = []
    outcome = "ok"
    async with Heartbeat() as beat:
        for n in range(hits):
            started = time.perf_counter()
            try:
                limiter.hit(ITEM, "bench", str(n % 50))
            except Exception as exc:
                outcome = type(exc).__name__
            times.append(time.perf_counter() - started)
            await asyncio.sleep(pause)  # the request ends; the loop runs the heartbeat
    return times, beat.max_gap, outcome


async def measure_async(url: str, hits: int, timeout: float | None, pause: float = 0.0) -> Result:
    options = {} if timeout is None else {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    uri = url.replace("redis://", "async+redis://", 1)
    limiter = AsyncFixedWindow(AsyncRedisStorage(uri, implementation="redispy", **options))
    times: list[float] = []
    outcome = "ok"
    async with Heartbeat() as beat:
        for n in range(hits):
            started = time.perf_counter()
            try:
                await limiter.hit(ITEM, "bench", str(n % 50))
            except Exception as exc:
                outcome = type(exc).__name__
            times.append(time.perf_counter() - started)
            await asyncio.sleep(pause)
    return times, beat.max_gap, outcome


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return f.read().strip()


def row(name: str, times: list[float], gap: float, outcome: str) -> str:
    times = sorted(times)
    p50 = statistics.median(times) * 1e6
    p99 = times[int(len(times) * 0.99) - 1] * 1e6 if len(times) >= 100 else times[-1] * 1e6
    stall = gap * 1e3
    figures = f"n={len(times):<5} p50={p50:9.1f} µs  p99={p99:9.1f} µs  longest loop stall={stall:8.2f} ms"
    return f"{name:<34} {figures}  ({outcome})"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hits", type=int, default=2000)
    parser.add_argument("--timeout", type=float, default=0.25, help="socket timeouts for the stalled-server runs")
    args = parser.parse_args()
    print("load average:", loadavg())
    with redis_server() as url:
        for _ in range(2):  # alternate, so a busy minute hits both
            print(row("sync (slowapi's path), Redis up", *await measure_sync(url, args.hits, None)))
            print(row("asyncio, Redis up", *await measure_async(url, args.hits, None)))
    with silent_server() as url:
        stalled, label = 5, f"stalled, timeout {args.timeout}s"
        print(row(f"sync, {label}", *await measure_sync(url, stalled, args.timeout, 0.005)))
        print(row(f"asyncio, {label}", *await measure_async(url, stalled, args.timeout, 0.005)))
    print("load average:", loadavg())


if __name__ == "__main__":
    asyncio.run(main())
