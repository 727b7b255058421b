"""POST /send with the file transport (no SMTP row): checklist 5–14, 34, 35, bad input, idempotency."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from tests.notifications.conftest import parse_eml

WELCOME = {
    "template": "welcome_customer",
    "recipient_email": "jane@example.com",
    "recipient_name": "Jane Doe",
    "data": {"customer_name": "Jane", "login_url": "https://shop.test/login"},
}


async def history_total(client) -> int:
    return (await client.get("/api/v1/history")).json()["data"]["pagination"]["total"]


def parts(msg):
    return [(p.get_content_type(), p.get_content()) for p in msg.iter_parts()]


async def test_send_writes_multipart_eml(client, data_dir):
    response = await client.post("/api/v1/send", json=WELCOME)
    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "Email sent successfully"
    data = body["data"]
    assert data["status"] == "sent" and data["transport"] == "file" and data["missing_variables"] == []
    assert set(data) == {"id", "status", "transport", "sent_at", "missing_variables"}
    msg = parse_eml(data_dir / "outbox" / f"{data['id']}.eml")
    assert msg.get_content_type() == "multipart/alternative"
    assert msg["Subject"] == "Welcome to E-commerce Platform, Jane!"
    assert msg["To"] == "Jane Doe <jane@example.com>"
    assert msg["From"] == "System <no-reply@localhost>"
    assert msg["Reply-To"] == "no-reply@localhost"
    assert msg["Date"] and msg["Message-ID"]
    (text_type, text), (html_type, html) = parts(msg)
    assert (text_type, html_type) == ("text/plain", "text/html")
    assert "Welcome, Jane!" in text and "https://shop.test/login" in text
    assert '<a href="https://shop.test/login">' in html
    row = (await client.get(f"/api/v1/history/{data['id']}")).json()["data"]
    assert row["message_id"] == msg["Message-ID"]
    assert row["attempts"] == 1 and row["transport"] == "file" and row["sent_at"] == data["sent_at"]
    assert row["variables"] == '{"customer_name":"Jane","login_url":"https://shop.test/login"}'
    assert not list((data_dir / "outbox").glob(".*tmp"))


async def test_alias_spellings_give_identical_content(client, data_dir):
    canonical = (await client.post("/api/v1/send", json=WELCOME)).json()["data"]
    aliased = await client.post(
        "/api/v1/send",
        json={
            "templateCode": "welcome_customer",
            "recipientEmail": "jane@example.com",
            "recipientName": "Jane Doe",
            "data": WELCOME["data"],
        },
    )
    assert aliased.status_code == 200
    a = parse_eml(data_dir / "outbox" / f"{canonical['id']}.eml")
    b = parse_eml(data_dir / "outbox" / f"{aliased.json()['data']['id']}.eml")
    assert (a["Subject"], a["To"], parts(a)) == (b["Subject"], b["To"], parts(b))
    snake = await client.post(
        "/api/v1/send", json={"template_code": "welcome_customer", "recipient_email": "jane@example.com"}
    )
    assert snake.status_code == 200


async def test_canonical_spelling_wins(client):
    response = await client.post(
        "/api/v1/send",
        json={
            "template": "welcome_customer",
            "templateCode": "nope",
            "recipient_email": "a@example.com",
            "recipientEmail": "not an email",
        },
    )
    assert response.status_code == 200


async def test_camel_case_data_keys_reach_snake_case_names(client, data_dir):
    response = await client.post("/api/v1/send", json={**WELCOME, "data": {"customerName": "Jane"}})
    assert response.status_code == 200
    msg = parse_eml(data_dir / "outbox" / f"{response.json()['data']['id']}.eml")
    assert "Welcome, Jane!" in parts(msg)[0][1]
    assert msg["Subject"] == "Welcome to E-commerce Platform, Jane!"


async def test_unknown_or_inactive_template_is_404_without_row(client):
    response = await client.post("/api/v1/send", json={**WELCOME, "template": "no_such_code"})
    assert response.status_code == 404 and response.json()["message"] == "Template not found"
    assert await history_total(client) == 0
    templates = (await client.get("/api/v1/templates")).json()["data"]
    welcome = next(t for t in templates if t["code"] == "welcome_customer")
    await client.put(f"/api/v1/templates/{welcome['id']}", json={"is_active": 0})
    inactive = await client.post("/api/v1/send", json=WELCOME)
    assert inactive.status_code == 404 and inactive.json()["message"] == "Template not found"
    assert await history_total(client) == 0


async def test_required_fields(client):
    response = await client.post("/api/v1/send", json={"template": "welcome_customer"})
    assert response.status_code == 400
    assert response.json()["message"] == "Template and recipient email are required"
    assert [e["field"] for e in response.json()["errors"]] == ["recipient_email"]
    both = await client.post("/api/v1/send", json={"template": " ", "data": {}})
    assert [e["field"] for e in both.json()["errors"]] == ["template", "recipient_email"]
    assert await history_total(client) == 0


@pytest.mark.parametrize(
    "address",
    [
        "not-an-email",
        "a@b.com\r\nBcc: x@y.z",
        "Jane <jane@example.com>",
        "a" * 250 + "@example.com",
        "jöhn@example.com",
        "a@shop.test",
    ],
)
async def test_invalid_recipient(client, address):
    response = await client.post("/api/v1/send", json={**WELCOME, "recipient_email": address})
    assert response.status_code == 400
    assert response.json()["message"] == "Validation error"
    assert response.json()["errors"][0] == {"field": "recipient_email", "message": "Invalid email address"}
    assert await history_total(client) == 0


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"data": [1, 2]}, "data"),
        ({"data": "x"}, "data"),
        ({"template": 5}, "template"),
        ({"recipient_email": ["a@example.com"]}, "recipient_email"),
        ({"recipient_name": 3}, "recipient_name"),
        ({"recipient_name": "n" * 256}, "recipient_name"),
    ],
)
async def test_wrong_types(client, patch, field):
    response = await client.post("/api/v1/send", json={**WELCOME, **patch})
    assert response.status_code == 400
    assert response.json()["message"] == "Validation error"
    assert response.json()["errors"][0]["field"] == field
    assert await history_total(client) == 0


async def test_internationalized_domain_is_sent_in_ascii_form(client, data_dir):
    response = await client.post("/api/v1/send", json={**WELCOME, "recipient_email": "Jane@Exämple.com"})
    assert response.status_code == 200
    msg = parse_eml(data_dir / "outbox" / f"{response.json()['data']['id']}.eml")
    assert msg["To"].addresses[0].addr_spec == "Jane@xn--exmple-cua.com"


async def test_null_data_is_empty(client):
    response = await client.post("/api/v1/send", json={**WELCOME, "data": None})
    assert response.status_code == 200
    assert response.json()["data"]["missing_variables"] == ["customer_name", "login_url"]


async def test_html_is_escaped_text_is_raw(client, data_dir):
    evil = "<script>alert(1)</script>"
    response = await client.post("/api/v1/send", json={**WELCOME, "data": {"customer_name": evil}})
    msg = parse_eml(data_dir / "outbox" / f"{response.json()['data']['id']}.eml")
    (_, text), (_, html) = parts(msg)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html
    assert evil in text


async def test_subject_cannot_inject_headers(client, data_dir):
    created = await client.post(
        "/api/v1/templates", json={"name": "Hi", "code": "hi_name", "subject": "Hi {{ name }}", "body_text": "Body"}
    )
    assert created.status_code == 201
    response = await client.post(
        "/api/v1/send",
        json={"template": "hi_name", "recipient_email": "a@example.com", "data": {"name": "x\r\nBcc: evil@x.test"}},
    )
    assert response.status_code == 200
    raw = (data_dir / "outbox" / f"{response.json()['data']['id']}.eml").read_bytes()
    msg = parse_eml(data_dir / "outbox" / f"{response.json()['data']['id']}.eml")
    assert msg.get_all("Subject") == ["Hi x Bcc: evil@x.test"]
    assert msg["Bcc"] is None and b"\nBcc:" not in raw
    assert msg.get_content_type() == "text/plain"  # text only → a single part


async def test_recipient_name_control_characters_removed(client, data_dir):
    response = await client.post("/api/v1/send", json={**WELCOME, "recipient_name": "Jane\r\nBcc: x@y.z"})
    msg = parse_eml(data_dir / "outbox" / f"{response.json()['data']['id']}.eml")
    assert msg["Bcc"] is None
    assert msg["To"].addresses[0].display_name == "JaneBcc: x@y.z"
    assert msg["To"].addresses[0].addr_spec == "jane@example.com"


async def test_missing_variable_recorded_and_rendered_empty(client, data_dir):
    response = await client.post("/api/v1/send", json={**WELCOME, "data": {"customer_name": "Jane"}})
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["missing_variables"] == ["login_url"]
    row = (await client.get(f"/api/v1/history/{data['id']}")).json()["data"]
    assert row["missing_variables"] == ["login_url"]
    assert 'href=""' in parts(parse_eml(data_dir / "outbox" / f"{data['id']}.eml"))[1][1]


async def test_current_year_builtin_and_data_override(client, data_dir):
    await client.post(
        "/api/v1/templates",
        json={
            "name": "Y",
            "code": "year_t",
            "subject": "{{ current_year }}",
            "body_text": "{{ current_year }} {{ company_name }}",
        },
    )
    first = await client.post("/api/v1/send", json={"template": "year_t", "recipient_email": "a@example.com"})
    msg = parse_eml(data_dir / "outbox" / f"{first.json()['data']['id']}.eml")
    assert msg["Subject"] == str(datetime.now(UTC).year)
    second = await client.post(
        "/api/v1/send",
        json={"template": "year_t", "recipient_email": "a@example.com", "data": {"current_year": "1999"}},
    )
    msg = parse_eml(data_dir / "outbox" / f"{second.json()['data']['id']}.eml")
    assert msg["Subject"] == "1999"
    assert msg.get_content().startswith("1999 E-commerce Platform")


async def test_company_name_from_settings(app_client, data_dir):
    async with app_client(NOTIFY_COMPANY_NAME="Acme Shop") as c:
        response = await c.post("/api/v1/send", json=WELCOME)
        assert parse_eml(data_dir / "outbox" / f"{response.json()['data']['id']}.eml")["Subject"] == (
            "Welcome to Acme Shop, Jane!"
        )


async def test_unsafe_attribute_fails_rendering(client, data_dir):
    created = await client.post(
        "/api/v1/templates",
        json={"name": "Evil", "code": "evil_t", "subject": "x", "body_html": "{{ ''.__class__.__mro__ }}"},
    )
    assert created.status_code == 201
    response = await client.post("/api/v1/send", json={"template": "evil_t", "recipient_email": "a@example.com"})
    assert response.status_code == 400
    message = response.json()["message"]
    assert message.startswith("Template rendering failed")
    history = (await client.get("/api/v1/history")).json()["data"]["history"]
    assert history[0]["status"] == "failed" and history[0]["error_message"] == message
    assert history[0]["subject"] is None
    assert not list((data_dir / "outbox").glob("*.eml"))


@pytest.mark.parametrize("body", ["{% for x in n %}{% endfor %}", "{{ 'x' * (n * 20000000) }}", "{{ n / 0 }}"])
async def test_runtime_errors_are_rendering_failures(client, body):
    await client.post("/api/v1/templates", json={"name": "R", "code": "rt", "subject": "s", "body_text": body})
    response = await client.post(
        "/api/v1/send", json={"template": "rt", "recipient_email": "a@example.com", "data": {"n": 5}}
    )
    assert response.status_code == 400
    assert response.json()["message"].startswith("Template rendering failed: ")
    assert (await client.get("/api/v1/history?status=failed")).json()["data"]["pagination"]["total"] == 1
    assert (await client.get("/api/v1/history?status=pending")).json()["data"]["pagination"]["total"] == 0


async def test_html_only_template_gets_text_part(client, data_dir):
    await client.post(
        "/api/v1/templates",
        json={"name": "H", "code": "html_only", "subject": "s", "body_html": "<h1>Hi &amp; {{ n }}</h1><p>Line</p>"},
    )
    response = await client.post(
        "/api/v1/send", json={"template": "html_only", "recipient_email": "a@example.com", "data": {"n": "<b>"}}
    )
    msg = parse_eml(data_dir / "outbox" / f"{response.json()['data']['id']}.eml")
    (text_type, text), (html_type, html) = parts(msg)
    assert (text_type, html_type) == ("text/plain", "text/html")
    assert text.replace("\r\n", "\n") == "Hi & <b>\nLine\n"
    assert "&lt;b&gt;" in html


async def test_sensitive_values_redacted_in_history(client, data_dir):
    link = "https://shop.test/reset?token=abcdef123456"
    response = await client.post(
        "/api/v1/send",
        json={
            "template": "password_reset",
            "recipient_email": "j@example.com",
            "data": {"customer_name": "Jane", "reset_link": link, "nested": {"apiToken": "zzzzzzzz", "ok": "visible"}},
        },
    )
    history_id = response.json()["data"]["id"]
    msg = parse_eml(data_dir / "outbox" / f"{history_id}.eml")
    assert all(link in content for _, content in parts(msg))
    detail = await client.get(f"/api/v1/history/{history_id}")
    listing = await client.get("/api/v1/history")
    for answer in (detail.text, listing.text):
        assert "abcdef123456" not in answer and "shop.test/reset" not in answer and "zzzzzzzz" not in answer
        assert "[redacted]" in answer
    row = detail.json()["data"]
    assert json.loads(row["variables"]) == {
        "customer_name": "Jane",
        "reset_link": "[redacted]",
        "nested": {"apiToken": "[redacted]", "ok": "visible"},
    }
    assert 'href="[redacted]"' in row["body_html"] and "[redacted]" in row["body_text"]


async def test_order_confirmation_items_and_money(client, data_dir):
    response = await client.post(
        "/api/v1/send",
        json={
            "template": "order_confirmation",
            "recipient_email": "j@example.com",
            "data": {
                "customerName": "Jane",
                "orderNumber": "ORD-1",
                "items": [{"productName": "Lamp", "quantity": 2}],
                "totalAmount": 59.9,
            },
        },
    )
    assert response.status_code == 200
    msg = parse_eml(data_dir / "outbox" / f"{response.json()['data']['id']}.eml")
    (_, text), (_, html) = parts(msg)
    assert "Lamp &times; 2" in html and "Total: $59.90" in html
    assert "- Lamp x 2" in text and "Total: $59.90" in text
    assert msg["Subject"] == "Order ORD-1 confirmed"
    string_items = await client.post(
        "/api/v1/send",
        json={
            "template": "new_order_seller",
            "recipient_email": "s@example.com",
            "data": {"items": "2 x Lamp", "total_amount": "10"},
        },
    )
    (_, text), (_, html) = parts(parse_eml(data_dir / "outbox" / f"{string_items.json()['data']['id']}.eml"))
    assert "<p>2 x Lamp</p>" in html and "$10.00" in text


async def test_every_default_template_renders(client):
    data = {
        "customer_name": "C",
        "seller_name": "S",
        "business_name": "B",
        "dashboard_url": "https://d.example",
        "login_url": "https://l.example",
        "verification_link": "https://v.example",
        "reset_link": "https://r.example",
        "expiry_time": "1 hour",
        "order_number": "O-1",
        "items": [{"name": "N", "quantity": 1}],
        "total_amount": 3,
        "status": "shipped",
        "tracking_number": "T1",
        "carrier": "UPS",
        "notes": "Thanks",
    }
    for template in (await client.get("/api/v1/templates")).json()["data"]:
        response = await client.post(
            "/api/v1/send", json={"template": template["code"], "recipient_email": "a@example.com", "data": data}
        )
        assert response.status_code == 200, template["code"]
        assert response.json()["data"]["missing_variables"] == []


async def test_idempotency_key_sends_once(client, data_dir):
    headers = {"Idempotency-Key": "welcome:42"}
    first = await client.post("/api/v1/send", json=WELCOME, headers=headers)
    again = await client.post("/api/v1/send", json=WELCOME, headers=headers)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert len(list((data_dir / "outbox").glob("*.eml"))) == 1
    other_recipient = await client.post(
        "/api/v1/send", json={**WELCOME, "recipient_email": "b@example.com"}, headers=headers
    )
    assert other_recipient.json()["data"]["id"] != first.json()["data"]["id"]
    without_key = await client.post("/api/v1/send", json=WELCOME)
    assert without_key.json()["data"]["id"] != first.json()["data"]["id"]
    assert await history_total(client) == 3


async def test_idempotency_key_concurrent_duplicates(client, data_dir):
    import asyncio

    responses = await asyncio.gather(
        *(client.post("/api/v1/send", json=WELCOME, headers={"Idempotency-Key": "k"}) for _ in range(10))
    )
    assert {r.status_code for r in responses} <= {200, 202}
    assert len({r.json()["data"]["id"] for r in responses}) == 1
    assert await history_total(client) == 1


async def test_idempotency_replays_rendering_failure(client):
    await client.post(
        "/api/v1/templates", json={"name": "E", "code": "evil_t", "subject": "s", "body_text": "{{ ''.__class__ }}"}
    )
    body = {"template": "evil_t", "recipient_email": "a@example.com"}
    first = await client.post("/api/v1/send", json=body, headers={"Idempotency-Key": "x"})
    again = await client.post("/api/v1/send", json=body, headers={"Idempotency-Key": "x"})
    assert first.status_code == again.status_code == 400
    assert first.json() == again.json()
    assert await history_total(client) == 1
    too_long = await client.post("/api/v1/send", json=body, headers={"Idempotency-Key": "k" * 256})
    assert too_long.status_code == 400 and too_long.json()["errors"][0]["field"] == "Idempotency-Key"


async def test_deleted_template_rows_keep_code(client):
    templates = (await client.get("/api/v1/templates")).json()["data"]
    welcome = next(t for t in templates if t["code"] == "welcome_customer")
    sent = (await client.post("/api/v1/send", json=WELCOME)).json()["data"]
    await client.delete(f"/api/v1/templates/{welcome['id']}")
    row = (await client.get(f"/api/v1/history/{sent['id']}")).json()["data"]
    assert row["template_code"] == "welcome_customer"
