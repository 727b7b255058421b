"""History: checklist 32, 33 and the list's filters, order and pagination."""

from __future__ import annotations

import pytest


async def send(client, template="welcome_customer", email="jane@example.com", expect=200, **data):
    response = await client.post("/api/v1/send", json={"template": template, "recipient_email": email, "data": data})
    assert response.status_code == expect, response.text
    return response


@pytest.mark.parametrize(
    "query",
    ["limit=101", "limit=0", "limit=x", "page=0", "page=-1", "page=1.5", "status=bogus", "page=99999999999999999999"],
)
async def test_bad_query_values_are_400(client, query):
    response = await client.get(f"/api/v1/history?{query}")
    assert response.status_code == 400
    assert response.json()["message"] == "Validation error"
    assert response.json()["errors"][0]["field"] == query.split("=")[0]


async def test_filters_and_pagination(client):
    await send(client, email="JANE@example.com", customer_name="A")
    await send(client, email="jane@example.com")
    await send(client, email="bob@example.com")
    await send(client, template="password_reset", email="jane@example.com")
    await client.post(
        "/api/v1/templates", json={"name": "E", "code": "evil_t", "subject": "s", "body_text": "{{ ''.__class__ }}"}
    )
    await send(client, template="evil_t", email="jane@example.com", expect=400)  # failed row

    response = await client.get(
        "/api/v1/history", params={"status": "sent", "template_code": "welcome_customer", "recipient_email": "JANE@"}
    )
    assert response.status_code == 200 and response.json()["message"] == "Email history retrieved"
    data = response.json()["data"]
    assert [r["recipient_email"] for r in data["history"]] == ["jane@example.com", "JANE@example.com"]
    assert data["pagination"] == {"page": 1, "limit": 20, "total": 2, "pages": 1, "totalPages": 1}
    for row in data["history"]:
        assert "body_html" not in row and "body_text" not in row and "message_id" not in row
        assert isinstance(row["missing_variables"], list) and isinstance(row["variables"], str)

    failed = (await client.get("/api/v1/history?status=failed")).json()["data"]
    assert [r["template_code"] for r in failed["history"]] == ["evil_t"]

    page2 = (await client.get("/api/v1/history?limit=2&page=2")).json()["data"]
    assert page2["pagination"] == {"page": 2, "limit": 2, "total": 5, "pages": 3, "totalPages": 3}
    everything = (await client.get("/api/v1/history?limit=100")).json()["data"]["history"]
    assert [r["id"] for r in everything] == sorted((r["id"] for r in everything), reverse=True)
    assert page2["history"] == everything[2:4]
    beyond = (await client.get("/api/v1/history?page=50")).json()["data"]
    assert beyond["history"] == [] and beyond["pagination"]["total"] == 5


async def test_recipient_filter_matches_wildcards_literally(client):
    await send(client, email="a_b@example.com")
    await send(client, email="axb@example.com")
    await send(client, email="a100@example.com")
    underscore = (await client.get("/api/v1/history", params={"recipient_email": "a_b"})).json()["data"]
    assert [r["recipient_email"] for r in underscore["history"]] == ["a_b@example.com"]
    percent = (await client.get("/api/v1/history", params={"recipient_email": "a%"})).json()["data"]
    assert percent["history"] == []


async def test_empty_filters_mean_no_filter(client):
    await send(client)
    response = await client.get("/api/v1/history?status=&template_code=&recipient_email=")
    assert response.status_code == 200 and response.json()["data"]["pagination"]["total"] == 1


async def test_one_row(client):
    sent = (await send(client, customer_name="Jane")).json()["data"]
    response = await client.get(f"/api/v1/history/{sent['id']}")
    assert response.status_code == 200
    assert response.json()["message"] == "Email history record retrieved"
    row = response.json()["data"]
    assert row["body_html"].startswith("<h2>Welcome, Jane!</h2>")
    assert row["body_text"].startswith("Welcome, Jane!")
    assert row["message_id"].startswith("<") and row["message_id"].endswith(">")
    assert row["missing_variables"] == ["login_url"]
    missing = await client.get("/api/v1/history/999999")
    assert missing.status_code == 404 and missing.json()["message"] == "History record not found"
    bad = await client.get("/api/v1/history/abc")
    assert bad.status_code == 400 and bad.json()["message"] == "Invalid ID format"
