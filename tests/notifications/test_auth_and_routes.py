"""Checklist 1, 2, 36; /health and /metrics; body guards."""

from __future__ import annotations

import pytest

from tests.notifications.conftest import SERVICE_KEY

PROTECTED = [
    ("POST", "/api/v1/send"),
    ("GET", "/api/v1/templates"),
    ("POST", "/api/v1/templates"),
    ("GET", "/api/v1/templates/1"),
    ("PUT", "/api/v1/templates/1"),
    ("DELETE", "/api/v1/templates/1"),
    ("GET", "/api/v1/smtp"),
    ("POST", "/api/v1/smtp"),
    ("GET", "/api/v1/history"),
    ("GET", "/api/v1/history/1"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_service_key_missing_401_wrong_403(client, method, path):
    missing = await client.request(method, path, headers={"X-Service-Key": ""}, json={})
    assert missing.status_code == 401
    assert missing.json() == {"success": False, "message": "Invalid or missing service key"}
    wrong = await client.request(method, path, headers={"X-Service-Key": "nope"}, json={})
    assert wrong.status_code == 403
    assert wrong.json()["message"] == "Invalid or missing service key"


async def test_bearer_token_is_not_accepted(client):
    response = await client.get("/api/v1/templates", headers={"X-Service-Key": "", "Authorization": "Bearer x.y.z"})
    assert response.status_code == 401


async def test_health_and_metrics_need_no_key(client):
    health = await client.get("/health", headers={"X-Service-Key": ""})
    assert health.status_code == 200
    body = health.json()
    assert body["success"] is True and body["status"] == "healthy"
    assert body["service"] == "notifications-service"
    assert body["database"] == "connected" and body["transport"] == "file" and body["pending"] == 0
    assert body["timestamp"].endswith("Z")
    metrics = await client.get("/metrics", headers={"X-Service-Key": ""})
    assert metrics.status_code == 200
    assert "notifications_queue_pending" in metrics.text
    assert "http_requests_total" in metrics.text


async def test_health_503_when_database_cannot_be_queried(client):
    await client.app.state.db.close()
    response = await client.get("/health")
    assert response.status_code == 503
    assert response.json()["status"] == "unhealthy"
    assert response.json()["database"] == "disconnected"


async def test_metrics_count_emails(client):
    await client.post("/api/v1/send", json={"template": "welcome_customer", "recipient_email": "a@example.com"})
    text = (await client.get("/metrics")).text
    assert 'notifications_emails_total{status="sent",transport="file"} 1.0' in text


async def test_any_of_several_service_keys(app_client):
    async with app_client(SERVICE_KEY=f"k1,{SERVICE_KEY}") as c:
        assert (await c.get("/api/v1/templates", headers={"X-Service-Key": "k1"})).status_code == 200
        assert (await c.get("/api/v1/templates", headers={"X-Service-Key": SERVICE_KEY})).status_code == 200
        assert (await c.get("/api/v1/templates", headers={"X-Service-Key": "k3"})).status_code == 403


async def test_unknown_route_and_wrong_method_answer_envelopes(client):
    unknown = await client.get("/api/v1/nothing")
    assert unknown.status_code == 404
    assert unknown.json()["success"] is False
    wrong = await client.delete("/api/v1/send")
    assert wrong.status_code == 405
    assert wrong.json() == {"success": False, "message": "Method not allowed"}


@pytest.mark.parametrize("raw", [b"[1, 2]", b'"text"', b"{not json", b"null", b""])
async def test_body_not_a_json_object(client, raw):
    for path in ("/api/v1/send", "/api/v1/templates", "/api/v1/smtp"):
        response = await client.post(path, content=raw, headers={"Content-Type": "application/json"})
        assert response.status_code == 400, (path, raw)
        assert response.json() == {
            "success": False,
            "message": "Validation error",
            "errors": [{"field": "body", "message": "Body must be a JSON object"}],
        }


async def test_oversized_request_body_is_413(app_client):
    async with app_client(MAX_JSON_BODY_BYTES=1000) as c:
        body = {"template": "welcome_customer", "recipient_email": "a@example.com", "data": {"x": "y" * 2000}}
        response = await c.post("/api/v1/send", json=body)
        assert response.status_code == 413
        assert (await c.get("/api/v1/history")).json()["data"]["pagination"]["total"] == 0
