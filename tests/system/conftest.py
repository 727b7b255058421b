"""The real services as separate processes on free loopback ports, wired to each other,
with the gateway in front. Started once for the module; every wait is bounded."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from shared.testing import free_port

SERVICES = ("customer", "sellers", "media", "products", "orders", "notifications")
KEY = "system-test-key"
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Stack:
    gateway: str
    urls: dict[str, str]
    data_dir: Path


@contextmanager
def running_stack(data_dir: Path) -> Iterator[Stack]:
    """Every service (and the gateway) as its own process on free ports, data under
    ``data_dir/<service>``; stopped on exit."""
    ports = {name: free_port() for name in ("gateway", *SERVICES)}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SERVICE_KEY": KEY,
        "BCRYPT_ROUNDS": "4",
        "RATE_LIMIT_MAX": "0",
        "LOG_LEVEL": "warning",
        "OUTBOX_POLL_SECONDS": "0.3",
        "NOTIFY_WORKER_INTERVAL_SECONDS": "0.3",
        "MEDIA_CLEANUP_INTERVAL_SECONDS": "0",
        **{f"{name.upper()}_SERVICE_URL": url for name, url in urls.items() if name != "gateway"},
    }
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for name, port in ports.items():
            service_env = {**env, "PORT": str(port), "DATA_DIR": str(data_dir / name)}
            processes.append(
                subprocess.Popen([sys.executable, "-m", name], cwd=ROOT, env=service_env, stdout=subprocess.DEVNULL)
            )
        deadline = time.monotonic() + 60
        for name, url in urls.items():
            while True:
                try:
                    if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, f"{name} did not become healthy"
                time.sleep(0.2)
        yield Stack(gateway=urls["gateway"], urls=urls, data_dir=data_dir)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("system")) as running:
        yield running
