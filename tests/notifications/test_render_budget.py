"""Issue 11 item 2: a hostile template is refused with a 400 (at creation when its constant
parts exceed the budget, at sending when the data makes it), rendering runs off the event loop,
and ``/health`` answers while a render runs."""

from __future__ import annotations

import asyncio
import threading

import pytest

from notifications import sandbox
from notifications.rendering import Renderer, RenderError

HOSTILE_CONSTANT = [
    "{{ 'x'|center(800000000) }}",
    "{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}",
    "{% for a in range(100000) %}x{% endfor %}",
    "{{ 'x'.ljust(800000000) }}",
    "{{ 'x'.rjust(800000000) }}",
    "{{ 'x'|indent(800000000) }}",
    "{{ ('ab' * 400)|wordwrap(1, wrapstring='y' * 9000) }}",
    "{{ ('a' * 9000)|replace('a', 'b' * 9000) }}",
    "{{ '%800000000s'|format(1) }}",
    "{{ '{:>800000000}'.format(1) }}",
    "{{ 'x' * 800000000 }}",
    "{{ [1]|batch(800000000, 'x')|list }}",
    "{% macro m() %}{% for i in range(10000) %}{{ 'y' * 1000 }}{% endfor %}{% endmacro %}{{ m() }}",
    "{{ ((10 ** 1000) ** 1000) ** 1000 }}",
    "{{ (range(10000)|list) * 1000 }}",
]

HOSTILE_WITH_DATA = [
    "{{ 'x'|center(n) }}",
    "{{ 'x'|truncate(n) }}",
    "{% for a in items %}{% for b in items %}{% endfor %}{% endfor %}",
    "{{ '%*s'|format(n, 1) }}",
    "{{ 'x'.zfill(n) }}",
]


def template(code: str, body: str) -> dict:
    return {"name": "Hostile", "code": code, "subject": "s", "body_text": body}


@pytest.mark.parametrize("source", HOSTILE_CONSTANT)
async def test_hostile_template_refused_at_creation(client, source):
    response = await client.post("/api/v1/templates", json=template("hostile", source))
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["message"] == "Validation error"
    assert body["errors"][0]["field"] == "body_text"
    assert body["errors"][0]["message"].startswith("Template exceeds the rendering budget: ")
    listed = (await client.get("/api/v1/templates")).json()["data"]
    assert "hostile" not in {t["code"] for t in listed}


async def test_hostile_template_refused_at_update(client):
    created = (await client.post("/api/v1/templates", json=template("fine", "ok"))).json()["data"]
    response = await client.put(f"/api/v1/templates/{created['id']}", json={"body_text": HOSTILE_CONSTANT[0]})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "body_text"
    assert (await client.get(f"/api/v1/templates/{created['id']}")).json()["data"]["body_text"] == "ok"


@pytest.mark.parametrize("source", HOSTILE_WITH_DATA)
async def test_hostile_data_refused_at_send(client, source):
    created = await client.post("/api/v1/templates", json=template("by_data", source))
    assert created.status_code == 201, created.text
    response = await client.post(
        "/api/v1/send",
        json={
            "template": "by_data",
            "recipient_email": "a@example.com",
            "data": {"n": 800_000_000, "items": list(range(5000))},
        },
    )
    assert response.status_code == 400, response.text
    assert response.json()["success"] is False
    assert response.json()["message"].startswith("Template rendering failed: ")
    failed = (await client.get("/api/v1/history?status=failed")).json()["data"]["pagination"]["total"]
    assert failed == 1


def test_default_templates_render_within_the_budget():
    renderer = Renderer()
    items = [{"productName": f"P{i}", "quantity": i} for i in range(500)]
    rendered = renderer.render(
        {"subject": "{{ n }}", "body_html": "{% for item in items %}<li>{{ item.productName }}</li>{% endfor %}"},
        {"n": 1, "items": items},
    )
    assert rendered.body_html.count("<li>") == 500


def test_render_stops_itself_at_its_deadline():
    """A render with steps to spare stops when its deadline passes, by its own checks
    (10**8 loop iterations cannot finish within 0.2 s)."""
    renderer = Renderer(seconds=0.2, steps=10**12)
    source = "{% for a in range(10000) %}{% for b in range(10000) %}{{ '' }}{% endfor %}{% endfor %}"
    with pytest.raises(RenderError, match="longer than 0.2 s"):
        renderer.render({"subject": "s", "body_text": source}, {})


async def test_health_answers_while_a_render_runs(client, monkeypatch):
    """The render runs in a worker thread: /health answers while it is held mid-render."""
    created = await client.post("/api/v1/templates", json=template("slow", "{{ 'x'|center(n) }}"))
    assert created.status_code == 201
    entered, release = threading.Event(), threading.Event()
    original = sandbox.Budget.tick

    def held_tick(self, steps=1):
        if not entered.is_set():
            entered.set()
            release.wait(30)
        original(self, steps)

    monkeypatch.setattr(sandbox.Budget, "tick", held_tick)
    order: list[str] = []

    async def hostile_send():
        response = await client.post(
            "/api/v1/send", json={"template": "slow", "recipient_email": "a@example.com", "data": {"n": 800_000_000}}
        )
        order.append("send")
        return response

    sending = asyncio.create_task(hostile_send())
    # The render has started in its worker thread and is held there.
    assert await asyncio.to_thread(entered.wait, 30)
    health = await client.get("/health")
    order.append("health")
    release.set()
    response = await sending
    assert health.status_code == 200 and health.json()["status"] == "healthy"
    assert order == ["health", "send"]
    assert response.status_code == 400
    assert response.json()["message"].startswith("Template rendering failed: ")
