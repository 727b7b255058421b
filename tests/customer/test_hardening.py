"""Hostile input and failure cases of the customer service (issues 10, 11 and 16):
lone surrogates refused with nothing stored, registration atomic with its emails, old
bcrypt hashes upgraded to Argon2id on login, the service bodies in the document."""

from __future__ import annotations

import pytest

from customer.schemas import RegisterIn
from shared.passwords import hash_password
from tests.customer.conftest import HEADERS_KEY, person, register, settle

API = "/api/v1/customers"
JSON = {"Content-Type": "application/json"}


async def counts(client) -> tuple[int, int]:
    store = client.app.state.store
    return await store.collection("customers").count({}), await store.collection("outbox").count({})


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "/register",
            '{"firstName": "Jane\\ud800", "lastName": "Smith", "email": "a@example.com", "password": "secret123"}',
        ),
        (
            "/register",
            '{"firstName": "Jane", "lastName": "Smith", "email": "a@example.com", "password": "secret\\udfff1"}',
        ),
        (
            "/signup",
            '{"firstName": "Jane", "lastName": "Smith", "email": "a\\ud800@example.com", "password": "secret123"}',
        ),
        ("/login", '{"email": "a\\ud800@example.com", "password": "secret123"}'),
        ("/login", '{"email": "a@example.com", "password": "\\ud800\\ud800\\ud800"}'),
        ("/forgot-password", '{"email": "\\udc00a@example.com"}'),
    ],
)
async def test_lone_surrogates_answer_400_and_store_nothing(client, path, body):
    response = await client.post(f"{API}{path}", content=body.encode(), headers=JSON)
    assert response.status_code == 400, response.text
    assert response.json()["success"] is False
    assert await counts(client) == (0, 0)


async def test_a_fault_between_the_two_writes_leaves_no_account_and_a_retry_works(client, monkeypatch):
    customers = client.app.state.customers
    real_insert = customers.repo.insert_account

    async def crash(doc):
        raise RuntimeError("store went away after the outbox write")

    monkeypatch.setattr(customers.repo, "insert_account", crash)
    with pytest.raises(RuntimeError):
        await customers.register(data=RegisterIn.model_validate(person(1)))
    store = client.app.state.store
    assert await store.collection("customers").count({}) == 0
    assert await store.collection("outbox").count({}) == 0  # the rows queued first were taken back

    monkeypatch.setattr(customers.repo, "insert_account", real_insert)
    data = await register(client, 1)
    await settle(client)
    rows = {row["dedupeKey"] for row in await store.collection("outbox").find({})}
    cid = data["customer"]["id"]
    assert rows == {f"welcome_customer:{cid}", f"email_verification:{cid}"}


async def test_rows_of_a_crashed_registration_wait_for_their_account_then_close_unsent(client, notify, monkeypatch):
    """A crash (no clean-up) after the outbox rows: never an account without its emails; the
    rows are retried while the account may still come, then closed without a call."""
    customers = client.app.state.customers
    outbox = client.app.state.outbox

    async def crash(doc):
        raise RuntimeError("crash")

    async def no_cleanup(keys):
        return None

    monkeypatch.setattr(customers.repo, "insert_account", crash)
    monkeypatch.setattr(customers, "_forget", no_cleanup)
    with pytest.raises(RuntimeError):
        await customers.register(data=RegisterIn.model_validate(person(2)))
    assert await client.app.state.store.collection("customers").count({}) == 0
    assert await outbox.rows.count({"status": "pending"}) == 2

    await outbox.drain_once()  # young rows: the account may still be stored, so they wait
    assert await outbox.rows.count({"status": "pending"}) == 2 and notify.requests == []

    await outbox.rows.update_many(
        {}, {"$set": {"createdAt": "2000-01-01T00:00:00.000Z", "nextAttemptAt": "2000-01-01T00:00:00.000Z"}}
    )
    await outbox.drain_once()
    assert await outbox.rows.count({"status": "sent"}) == 2 and notify.requests == []


async def test_bcrypt_hash_logs_in_and_is_upgraded_to_argon2id(client):
    data = await register(client, 3)
    customers = client.app.state.store.collection("customers")
    legacy = await hash_password("secret123", rounds=4)
    await customers.update_one({"_id": data["customer"]["id"]}, {"$set": {"passwordHash": legacy}})

    wrong = await client.post(f"{API}/login", json={"email": "jane3@example.com", "password": "wrong-one"})
    assert wrong.status_code == 401
    assert (await customers.find_one({}))["passwordHash"] == legacy  # no upgrade without the password

    first = await client.post(f"{API}/login", json={"email": "jane3@example.com", "password": "secret123"})
    assert first.status_code == 200, first.text
    upgraded = (await customers.find_one({}))["passwordHash"]
    assert upgraded.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    again = await client.post(f"{API}/login", json={"email": "jane3@example.com", "password": "secret123"})
    assert again.status_code == 200
    assert (await customers.find_one({}))["passwordHash"] == upgraded


async def test_new_hashes_are_argon2id(client):
    await register(client, 4)
    stored = await client.app.state.store.collection("customers").find_one({})
    assert stored["passwordHash"].startswith("$argon2id$")


async def test_document_has_service_bodies_and_typed_answers(client):
    document = (await client.get("/openapi.json")).json()
    for path, field in (
        ("/api/v1/customers/service/bulk", "customerIds"),
        ("/api/v1/customers/service/verify", "customerId"),
    ):
        body = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        schema = document["components"]["schemas"][body["$ref"].rsplit("/", 1)[-1]]
        assert field in schema["required"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            answers = {code: r for code, r in operation["responses"].items() if code.startswith("2")}
            assert answers, (method, path)
            for answer in answers.values():
                assert answer["content"]["application/json"]["schema"], (method, path)
            assert "422" not in operation["responses"]


async def test_service_bodies_keep_the_contract_messages(client):
    bulk = await client.post(f"{API}/service/bulk", json={"customerIds": [{}]}, headers=HEADERS_KEY)
    assert bulk.status_code == 400 and bulk.json()["message"] == "Invalid ID format"
    nested = await client.post(f"{API}/service/bulk", json={"customerIds": [[None]]}, headers=HEADERS_KEY)
    assert nested.status_code == 400
    verify = await client.post(f"{API}/service/verify", json={"customerId": 5}, headers=HEADERS_KEY)
    assert verify.status_code == 400 and verify.json()["message"] == "Invalid ID format"
