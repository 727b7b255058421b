"""``WEB_CONCURRENCY=2``: ``python -m gateway`` and ``python -m media`` (on a new database,
which both workers open and migrate at once) each run two worker processes that answer
``/health``; the gateway's workers count one rate limit through Redis (when ``redis-server``
is installed); stopping the parent stops them. Every service's factory can be imported by a worker."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import httpx
import pytest
from uvicorn.importer import import_from_string

from shared.app import factory_path
from tests.multiprocess.conftest import Processes, wait_until, worker_pids

LIMIT = 8

SERVICES = ("gateway", "customer", "sellers", "media", "products", "orders", "admin", "notifications")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "State:\tZ" not in status.read_text()


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_factory_is_importable_by_a_worker(service: str) -> None:
    create_app = importlib.import_module(f"{service}.app").create_app
    path = factory_path(create_app)
    assert path == f"{service}.app:create_app"
    assert import_from_string(path) is create_app


def test_factory_path_refuses_what_a_worker_cannot_import() -> None:
    def local_factory() -> None: ...

    with pytest.raises(ValueError):
        factory_path(local_factory)  # type: ignore[arg-type]


def test_gateway_and_a_service_with_two_workers(processes: Processes, tmp_path: Path, redis: str | None) -> None:
    media = processes.start("media", {"WEB_CONCURRENCY": "2", "DATA_DIR": str(tmp_path / "media")})
    gateway = processes.start(
        "gateway",
        {
            "WEB_CONCURRENCY": "2",
            "MEDIA_SERVICE_URL": media.url,
            "RATE_LIMIT_MAX": str(LIMIT) if redis else "0",
            **({"REDIS_URL": redis} if redis else {}),
        },
    )
    for instance in (media, gateway):
        pid = instance.process.pid
        wait_until(lambda pid=pid: len(worker_pids(pid)) == 2, what=f"{instance.name}'s two workers")
    workers = {i.name: worker_pids(i.process.pid) for i in (media, gateway)}

    # Fresh connections, each accepted by whichever worker the kernel wakes: all answer healthy.
    for _ in range(6):
        assert httpx.get(f"{media.url}/health", timeout=10).json()["status"] == "healthy"
        answer = httpx.get(f"{gateway.url}/health", timeout=10)
        assert answer.status_code == 200 and answer.json()["status"] == "healthy"
    status = httpx.get(f"{gateway.url}/api/status", timeout=10).json()["services"]
    assert status["media"]["status"] == "healthy"  # a gateway worker reached a media worker

    if redis is not None:
        # One budget for both gateway workers (the request above was the first counted): each
        # request on a fresh connection, whichever worker takes it, counts against the same window.
        answers = [httpx.get(f"{gateway.url}/api/media/no-such-route", timeout=10) for _ in range(LIMIT + 3)]
        assert [a.status_code == 429 for a in answers] == [False] * (LIMIT - 1) + [True] * 4
        assert [a.headers["ratelimit-remaining"] for a in answers[: LIMIT - 1]] == [
            str(n) for n in range(LIMIT - 2, -1, -1)
        ]

    processes.stop_all()
    for name, pids in workers.items():
        wait_until(lambda pids=pids: not any(alive(pid) for pid in pids), seconds=30, what=f"{name}'s workers to stop")
