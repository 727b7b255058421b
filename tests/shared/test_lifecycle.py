"""The parts a service app starts and stops (``create_service_app(store=, parts=, closing=)``)."""

from __future__ import annotations

import pytest

from shared.app import create_service_app
from shared.settings import ServiceSettings
from shared.store import open_store
from shared.testing import running


class Part:
    """A part that writes what it is asked to do into ``log``."""

    def __init__(self, name: str, log: list[str], *, fail_start: bool = False) -> None:
        self.name, self.log, self.fail_start = name, log, fail_start

    async def create_indexes(self) -> None:
        self.log.append(f"{self.name}.create_indexes")

    async def start(self) -> None:
        if self.fail_start:
            raise RuntimeError(f"{self.name} cannot start")
        self.log.append(f"{self.name}.start")

    async def stop(self) -> None:
        self.log.append(f"{self.name}.stop")

    async def aclose(self) -> None:
        self.log.append(f"{self.name}.aclose")


class IndexOnly:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def create_indexes(self) -> None:
        self.log.append("repo.create_indexes")


def app_with(tmp_path, log: list[str], *parts: object, closing: tuple[Part, ...] = ()):
    store = open_store(mongodb_uri=None, data_dir=str(tmp_path), database="demo_db")

    async def hook(app) -> None:
        log.append("on_startup")

    app = create_service_app(
        ServiceSettings(_env_file=None), service="demo", store=store, parts=parts, closing=closing, on_startup=[hook]
    )
    return app, store


async def test_parts_start_in_order_and_stop_in_reverse(tmp_path):
    log: list[str] = []
    app, store = app_with(
        tmp_path, log, IndexOnly(log), Part("outbox", log), Part("worker", log), closing=(Part("clients", log),)
    )
    async with running(app):
        assert app.state.store is store
        assert await store.ping()
        assert log == [
            "repo.create_indexes",
            "outbox.create_indexes",
            "worker.create_indexes",
            "on_startup",
            "outbox.start",
            "worker.start",
        ]
        log.clear()
    assert log == ["worker.stop", "outbox.stop", "clients.aclose"]


async def test_a_failed_start_undoes_what_was_started(tmp_path):
    log: list[str] = []
    app, _ = app_with(
        tmp_path, log, Part("outbox", log), Part("worker", log, fail_start=True), closing=(Part("clients", log),)
    )
    with pytest.raises(RuntimeError, match="worker cannot start"):
        async with running(app):
            pass
    assert log[-3:] == ["outbox.start", "outbox.stop", "clients.aclose"]
