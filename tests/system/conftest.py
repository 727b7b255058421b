"""The real services as separate processes on free loopback ports, wired to each other,
with the gateway in front. Started once for the module; every wait is bounded."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from shared.testing import free_port

ALL_SERVICES = ("customer", "sellers", "media", "products", "orders", "admin", "notifications")
KEY = "system-test-key"
ROOT = Path(__file__).resolve().parents[2]
# The services built in this checkout (orders and admin came later than the others).
SERVICES = tuple(name for name in ALL_SERVICES if (ROOT / name / "__main__.py").exists())


@dataclass
class Stack:
    """The running processes; ``stop``/``start`` take one service down and bring it back on
    the same port and data (for fault tests)."""

    gateway: str
    urls: dict[str, str]
    data_dir: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    envs: dict[str, dict[str, str]] = field(default_factory=dict)

    def start(self, name: str, *, wait: bool = True) -> None:
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", name], cwd=ROOT, env=self.envs[name], stdout=subprocess.DEVNULL
        )
        if wait:
            self.wait_healthy(name)

    def stop(self, name: str) -> None:
        process = self.processes.pop(name)
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def wait_healthy(self, name: str, seconds: float = 60) -> None:
        url = self.urls[name]
        deadline = time.monotonic() + seconds
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"{name} did not become healthy"
            time.sleep(0.2)


@contextmanager
def running_stack(
    data_dir: Path,
    *,
    env: dict[str, str] | None = None,
    service_env: dict[str, dict[str, str]] | None = None,
) -> Iterator[Stack]:
    """Every service (and the gateway) as its own process on free ports, data under
    ``data_dir/<service>``; ``env`` for all, ``service_env`` per service; stopped on exit."""
    names = ("gateway", *SERVICES)
    ports = {name: free_port() for name in names}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    common = {
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
        "GATEWAY_URL": urls["gateway"],  # the admin service's health page probes it
        **(env or {}),
    }
    stack = Stack(gateway=urls["gateway"], urls=urls, data_dir=data_dir)
    for name in names:
        stack.envs[name] = {
            **common,
            "PORT": str(ports[name]),
            "DATA_DIR": str(data_dir / name),
            **(service_env or {}).get(name, {}),
        }
    try:
        for name in names:
            stack.start(name, wait=False)
        for name in names:
            stack.wait_healthy(name)
        yield stack
    finally:
        for name in list(stack.processes):
            stack.processes[name].terminate()
        for process in stack.processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("system")) as running:
        yield running
