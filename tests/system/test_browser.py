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
