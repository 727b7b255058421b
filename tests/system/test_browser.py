"""Pages a person looks at, in a real browser: every service's Swagger UI renders every
operation of its document, with its assets served by the service itself (no CDN)."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.system.browser import needs_chromium, rendered_dom, screenshot
from tests.system.conftest import SERVICES, Stack

pytestmark = needs_chromium


def operation_count(document: dict) -> int:
    methods = {"get", "post", "put", "patch", "delete", "options", "head"}
    return sum(1 for item in document["paths"].values() for method in item if method in methods)


@pytest.mark.parametrize("service", SERVICES)
def test_swagger_ui_renders_every_operation(stack: Stack, service: str, tmp_path):
    base = stack.urls[service]
    document = httpx.get(f"{base}/openapi.json", timeout=10).json()
    dom = rendered_dom(f"{base}/docs")
    blocks = re.findall(r'class="opblock opblock-(?:get|post|put|patch|delete|head|options)', dom)
    assert len(blocks) == operation_count(document) > 0
    assert "cdn.jsdelivr" not in httpx.get(f"{base}/docs", timeout=10).text
    shot = screenshot(f"{base}/docs", tmp_path / f"{service}-docs.png")
    assert shot.stat().st_size > 10_000  # a drawn page, not a blank one


def test_gateway_swagger_ui_renders_every_service(stack: Stack, tmp_path):
    document = httpx.get(f"{stack.gateway}/docs/openapi.json", timeout=30).json()
    dom = rendered_dom(f"{stack.gateway}/docs", budget_ms=15_000)
    blocks = re.findall(r'class="opblock opblock-(?:get|post|put|patch|delete|head|options)', dom)
    assert len(blocks) == operation_count(document)
    for service in SERVICES:  # every service's operations are in the merged page
        assert f"/api/{service}/" in dom, service
    screenshot(f"{stack.gateway}/docs", tmp_path / "gateway-docs.png")


def _status_rows(dom: str) -> dict[str, str]:
    rows = re.findall(r'<tr data-service="([a-z]+)">(.*?)</tr>', dom, flags=re.S)
    return {name: ("unhealthy" if ">unhealthy<" in row else "healthy") for name, row in rows}


def test_status_page_shows_each_service_and_a_stopped_one(stack: Stack, tmp_path):
    dom = rendered_dom(f"{stack.gateway}/status")
    rows = _status_rows(dom)
    assert set(rows) == set(SERVICES) and set(rows.values()) == {"healthy"}, rows
    assert f"{len(SERVICES)} of {len(SERVICES)} services healthy" in dom
    shot = screenshot(f"{stack.gateway}/status", tmp_path / "status-all-up.png", size="1100,700")
    assert shot.stat().st_size > 10_000

    stack.stop("sellers")
    try:
        dom = rendered_dom(f"{stack.gateway}/status")
        rows = _status_rows(dom)
        assert rows["sellers"] == "unhealthy" and all(v == "healthy" for k, v in rows.items() if k != "sellers")
        assert "Connection refused" in dom
        screenshot(f"{stack.gateway}/status", tmp_path / "status-sellers-down.png", size="1100,700")
    finally:
        stack.start("sellers")
