"""Issue 10: the document describes every body and the history query; hostile inputs answer 4xx."""

from __future__ import annotations

import pytest


async def test_document_has_bodies_queries_and_answers(client):
    document = (await client.get("/openapi.json", headers={"X-Service-Key": ""})).json()
    paths = document["paths"]
    for path, method in (
        ("/api/v1/send", "post"),
        ("/api/v1/templates", "post"),
        ("/api/v1/templates/{template_id}", "put"),
        ("/api/v1/smtp", "post"),
    ):
        operation = paths[path][method]
        assert "application/json" in operation["requestBody"]["content"], path
    history = {p["name"] for p in paths["/api/v1/history"]["get"]["parameters"]}
    assert {"page", "limit", "status", "template_code", "recipient_email"} <= history
    for item in paths.values():
        for operation in item.values():
            responses = operation["responses"]
            assert "422" not in responses
            success = next(code for code in responses if code.startswith("2"))
            assert responses[success]["content"]["application/json"]["schema"] != {}
            assert {"401", "403"} <= set(responses)
    send = paths["/api/v1/send"]["post"]["responses"]
    assert {"200", "202", "400", "404", "502"} <= set(send)
    assert "X-Service-Key" in str(document["components"]["securitySchemes"])


@pytest.mark.parametrize(
    "query", ["page=99999999999999999999", "page=1000001", "limit=99999999999999999999", "status=%00"]
)
async def test_history_query_bounded(client, query):
    response = await client.get(f"/api/v1/history?{query}")
    assert response.status_code == 400
    assert response.json()["message"] == "Validation error"


async def test_bad_body_without_key_is_still_401(client):
    response = await client.post(
        "/api/v1/send", content=b"{not json", headers={"Content-Type": "application/json", "X-Service-Key": ""}
    )
    assert response.status_code == 401
    assert response.json()["message"] == "Invalid or missing service key"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/send", {"template": "welcome_customer", "recipient_email": "a@example.com", "data": [1]}),
        ("/api/v1/send", {"template": ["x"], "recipient_email": "a@example.com"}),
        ("/api/v1/send", {"template": "welcome_customer", "recipient_email": "a" * 300 + "@example.com"}),
        ("/api/v1/smtp", {"host": "h", "from_email": "a@example.com", "port": 10**30}),
        ("/api/v1/smtp", {"host": "h", "from_email": "a@example.com", "port": True}),
        ("/api/v1/templates", {"name": "n", "code": "c_1", "subject": "s", "body_text": "x", "is_active": 2**64}),
    ],
)
async def test_hostile_bodies_answer_400_and_store_nothing(client, path, body):
    before = (await client.get("/api/v1/history")).json()["data"]["pagination"]["total"]
    response = await client.post(path, json=body)
    assert response.status_code == 400, response.text
    assert response.json()["success"] is False
    assert (await client.get("/api/v1/history")).json()["data"]["pagination"]["total"] == before
    assert (await client.get("/api/v1/smtp")).status_code == 404
    assert "c_1" not in {t["code"] for t in (await client.get("/api/v1/templates")).json()["data"]}
