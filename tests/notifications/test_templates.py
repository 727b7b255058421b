"""Templates CRUD: checklist 3, 4, 15–19 and the other validation rules of 4.3–4.6."""

from __future__ import annotations

import json
import sqlite3

import pytest

DEFAULT_CODES = {
    "welcome_customer": ["customer_name", "login_url"],
    "welcome_seller": ["seller_name", "business_name", "dashboard_url"],
    "email_verification": ["customer_name", "verification_link", "expiry_time"],
    "password_reset": ["customer_name", "reset_link", "expiry_time"],
    "order_confirmation": ["customer_name", "order_number", "items", "total_amount"],
    "new_order_seller": ["seller_name", "order_number", "customer_name", "items", "total_amount"],
    "order_status_update": ["customer_name", "order_number", "status", "tracking_number", "carrier", "notes"],
}


def new_template(**extra):
    body = {
        "name": "Promo",
        "code": "promo_mail",
        "subject": "Hi {{ name }}",
        "body_html": "<p>{{ offer }}</p>",
        "body_text": "{{ offer }} for {{ company_name }}",
    }
    body.update(extra)
    return body


async def test_fresh_database_has_the_seven_defaults(client):
    response = await client.get("/api/v1/templates")
    assert response.status_code == 200
    assert response.json()["message"] == "Templates retrieved successfully"
    templates = response.json()["data"]
    assert {t["code"] for t in templates} == set(DEFAULT_CODES)
    for t in templates:
        assert isinstance(t["variables"], str)
        assert json.loads(t["variables"]) == DEFAULT_CODES[t["code"]]
        assert t["is_active"] == 1
        assert set(t) == {
            "id",
            "name",
            "code",
            "subject",
            "body_html",
            "body_text",
            "variables",
            "is_active",
            "created_at",
            "updated_at",
        }
    welcome = next(t for t in templates if t["code"] == "welcome_customer")
    assert welcome["variables"] == '["customer_name", "login_url"]'
    assert welcome["name"] == "Welcome Customer"
    assert welcome["subject"] == "Welcome to {{ company_name }}, {{ customer_name }}!"


async def test_deleted_default_stays_deleted_after_restart(app_client):
    async with app_client() as c:
        templates = (await c.get("/api/v1/templates")).json()["data"]
        reset = next(t for t in templates if t["code"] == "password_reset")
        deleted = await c.delete(f"/api/v1/templates/{reset['id']}")
        assert deleted.status_code == 200
        assert deleted.json() == {"success": True, "message": "Template deleted successfully"}
        welcome = next(t for t in templates if t["code"] == "welcome_customer")
        await c.put(f"/api/v1/templates/{welcome['id']}", json={"subject": "Edited"})
    async with app_client() as c:
        templates = (await c.get("/api/v1/templates")).json()["data"]
        codes = [t["code"] for t in templates]
        assert "password_reset" not in codes and len(codes) == 6
        assert next(t for t in templates if t["code"] == "welcome_customer")["subject"] == "Edited"


async def test_create_and_read_back(client):
    response = await client.post("/api/v1/templates", json=new_template())
    assert response.status_code == 201
    assert response.json()["message"] == "Template created successfully"
    created = response.json()["data"]
    assert created["code"] == "promo_mail" and created["is_active"] == 1
    assert created["variables"] == '["name", "offer"]'  # derived: sorted, built-ins left out
    fetched = await client.get(f"/api/v1/templates/{created['id']}")
    assert fetched.status_code == 200 and fetched.json()["message"] == "Template retrieved successfully"
    assert fetched.json()["data"] == created
    listed = (await client.get("/api/v1/templates")).json()["data"]
    assert listed[0]["id"] == created["id"]  # newest first


@pytest.mark.parametrize("body", ["{{ foo }", "ok\nline two\n{{ foo }"])
@pytest.mark.parametrize("field", ["body_html", "body_text"])
async def test_syntax_error_is_refused_with_line_number(client, field, body):
    other = "body_text" if field == "body_html" else "body_html"
    response = await client.post("/api/v1/templates", json=new_template(**{field: body, other: "fine"}))
    assert response.status_code == 400
    assert response.json()["message"] == "Validation error"
    error = response.json()["errors"][0]
    assert error["field"] == field
    line = body.count("\n") + 1
    assert error["message"] == f"Template syntax error at line {line}: unexpected '}}'"


async def test_syntax_error_in_subject_and_unknown_filter(client):
    response = await client.post("/api/v1/templates", json=new_template(subject="{% if x %}", body_html="{{ a|nope }}"))
    assert response.status_code == 400
    fields = {e["field"]: e["message"] for e in response.json()["errors"]}
    assert fields["subject"].startswith("Template syntax error at line 1")
    assert fields["body_html"].startswith("Template syntax error at line 1")


async def test_bad_code_and_duplicate_code(client):
    bad = await client.post("/api/v1/templates", json=new_template(code="Bad-Code"))
    assert bad.status_code == 400
    assert bad.json()["errors"] == [{"field": "code", "message": "Code must match ^[a-z0-9_]{2,64}$"}]
    duplicate = await client.post("/api/v1/templates", json=new_template(code="welcome_customer"))
    assert duplicate.status_code == 409
    assert duplicate.json()["message"] == "Template code already exists"
    assert duplicate.json()["errors"][0]["field"] == "code"


async def test_each_bad_field_is_reported(client):
    response = await client.post(
        "/api/v1/templates",
        json={"name": "", "code": "x", "subject": "s" * 501, "body_html": "", "is_active": 7, "variables": [1]},
    )
    assert response.status_code == 400
    fields = [e["field"] for e in response.json()["errors"]]
    assert fields == ["name", "code", "subject", "body_html", "variables", "is_active"]


async def test_body_size_limit(client):
    big = "x" * (256 * 1024 + 1)
    response = await client.post("/api/v1/templates", json=new_template(body_html=big))
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "body_html"
    ok = await client.post("/api/v1/templates", json=new_template(body_html="x" * (256 * 1024)))
    assert ok.status_code == 201


@pytest.mark.parametrize("variables", [["a", "b"], '["a","b"]', '["a", "b"]'])
async def test_variables_list_or_json_string(client, variables):
    response = await client.post("/api/v1/templates", json=new_template(variables=variables))
    assert response.status_code == 201
    assert response.json()["data"]["variables"] == '["a", "b"]'


async def test_is_active_spellings(client):
    for i, value in enumerate([0, 1, True, False]):
        response = await client.post("/api/v1/templates", json=new_template(code=f"t_{i}", is_active=value))
        assert response.json()["data"]["is_active"] == int(value)


async def test_update_ignores_code_and_advances_updated_at(client, data_dir):
    created = (await client.post("/api/v1/templates", json=new_template())).json()["data"]
    with sqlite3.connect(data_dir / "notifications.db") as db:  # make the old timestamp visibly older
        db.execute(
            "UPDATE notification_templates SET updated_at = '2020-01-01 00:00:00' WHERE id = ?", (created["id"],)
        )
    response = await client.put(f"/api/v1/templates/{created['id']}", json={"code": "other", "name": "N"})
    assert response.status_code == 200
    assert response.json()["message"] == "Template updated successfully"
    updated = response.json()["data"]
    assert updated["name"] == "N" and updated["code"] == "promo_mail"
    assert updated["updated_at"] > "2020-01-01 00:00:00"
    assert updated["variables"] == created["variables"]  # not sent → unchanged


async def test_update_rules(client):
    created = (await client.post("/api/v1/templates", json=new_template())).json()["data"]
    path = f"/api/v1/templates/{created['id']}"
    nothing = await client.put(path, json={"code": "only_code"})
    assert nothing.status_code == 400
    assert nothing.json()["errors"] == [{"field": "body", "message": "No fields to update"}]
    both_empty = await client.put(path, json={"body_html": None, "body_text": ""})
    assert both_empty.status_code == 400
    syntax = await client.put(path, json={"body_text": "{% for %}"})
    assert syntax.status_code == 400 and syntax.json()["errors"][0]["field"] == "body_text"
    changed = await client.put(path, json={"body_html": None, "variables": ["offer"], "is_active": False})
    assert changed.status_code == 200
    data = changed.json()["data"]
    assert data["body_html"] is None and data["variables"] == '["offer"]' and data["is_active"] == 0


async def test_ids(client):
    for bad in ("abc", "0", "01", "-1", "1.5", "1" * 20):
        response = await client.get(f"/api/v1/templates/{bad}")
        assert response.status_code == 400, bad
        assert response.json()["message"] == "Invalid ID format"
    for path_method in ("get", "delete"):
        missing = await getattr(client, path_method)("/api/v1/templates/999999")
        assert missing.status_code == 404 and missing.json()["message"] == "Template not found"
    assert (await client.get("/api/v1/templates/9999999999999999999")).status_code == 404
    assert (await client.put("/api/v1/templates/999999", json={"name": "x"})).status_code == 404
