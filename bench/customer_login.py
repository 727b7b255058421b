"""Benchmark: /health latency of the customer service while 16 clients log in (Argon2id, pwdlib).

Starts the service as a real process on a free loopback port with a temporary SQLite
store, registers one customer (an Argon2id hash; ``--rounds`` sets BCRYPT_ROUNDS, which new
hashes no longer use), then runs 16 concurrent login loops for DURATION seconds
while timing GET /health every 10 ms. Prints logins/s and /health p50/p99.

    .venv/bin/python bench/customer_login.py [--seconds 10] [--clients 16] [--rounds 12]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from shared.testing import free_port


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def wait_healthy(session: aiohttp.ClientSession, base: str) -> None:
    for _ in range(100):
        try:
            async with session.get(f"{base}/health") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("service did not become healthy")


async def run(seconds: float, clients: int, base: str) -> None:
    async with aiohttp.ClientSession() as session:
        await wait_healthy(session, base)
        user = {"firstName": "Bench", "lastName": "User", "email": "bench@example.com", "password": "bench-pass-1"}
        async with session.post(f"{base}/api/v1/customers/register", json=user) as response:
            assert response.status in (201, 409), await response.text()
        stop_at = time.perf_counter() + seconds
        logins = 0
        failures = 0
        health: list[float] = []

        async def login_loop() -> None:
            nonlocal logins, failures
            body = {"email": user["email"], "password": user["password"]}
            while time.perf_counter() < stop_at:
                async with session.post(f"{base}/api/v1/customers/login", json=body) as response:
                    await response.read()
                    if response.status == 200:
                        logins += 1
                    else:
                        failures += 1

        async def health_loop() -> None:
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                async with session.get(f"{base}/health") as response:
                    await response.read()
                health.append((time.perf_counter() - started) * 1000)
                await asyncio.sleep(0.01)

        started = time.perf_counter()
        await asyncio.gather(health_loop(), *[login_loop() for _ in range(clients)])
        elapsed = time.perf_counter() - started
        print(f"logins: {logins} in {elapsed:.1f}s = {logins / elapsed:.1f}/s ({failures} failed), {clients} clients")
        print(
            f"/health: n={len(health)} p50={statistics.median(health):.2f} ms "
            f"p99={percentile(health, 0.99):.2f} ms max={max(health):.2f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=12)
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        env = {
            **os.environ,
            "PORT": str(port),
            "DATA_DIR": data_dir,
            "BCRYPT_ROUNDS": str(args.rounds),
            "RATE_LIMIT_MAX": "0",
            "LOG_LEVEL": "warning",
            "NOTIFICATIONS_SERVICE_URL": f"http://127.0.0.1:{free_port()}",
        }
        proc = subprocess.Popen([sys.executable, "-m", "customer"], env=env, cwd=Path(__file__).parent.parent)
        try:
            asyncio.run(run(args.seconds, args.clients, f"http://127.0.0.1:{port}"))
        finally:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
