"""How services answer the store's refusal of a hostile value: 400 "Invalid value", never a 500."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from shared.responses import install_error_handlers
from shared.store import StoreValueError
from shared.store.sqlite import SqliteStore


async def test_store_value_error_answers_400_envelope(tmp_path) -> None:
    store = SqliteStore(tmp_path / "app.sqlite3")
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/things")
    async def create(body: dict) -> dict:
        await store.collection("things").insert_one(body)
        return {"success": True}

    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            for raw in (b'{"n": 99999999999999999999}', b'{"s": "\\ud800"}', b'{"f": NaN}', b'{"k": {"a.b": 1}}'):
                answer = await client.post("/things", content=raw, headers={"content-type": "application/json"})
                assert answer.status_code == 400, (raw, answer.text)
                assert answer.json() == {"success": False, "message": "Invalid value"}
            assert (await client.post("/things", json={"n": 1})).status_code == 200
        assert await store.collection("things").count() == 1
    finally:
        await store.close()


def test_store_value_error_is_an_unsupported_query() -> None:
    # Code that already catches UnsupportedQuery keeps catching it; handlers pick the subclass.
    from shared.store import UnsupportedQuery

    assert issubclass(StoreValueError, UnsupportedQuery)
    assert StoreValueError("x", where="document").where == "document"
