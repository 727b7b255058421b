"""The gateway's own endpoints (contract §4.2–§4.6): ordinary FastAPI routes, off the hot path."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import aiohttp
from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.openapi import merge
from gateway.proxy import Upstream
from gateway.schemas import (
    COMMON,
    COMMON_JSON,
    DocsDirectory,
    HealthPublic,
    InternalError,
    MediaError,
    StatusPublic,
    errors,
)
from gateway.settings import SERVICES
from shared.app import DOCS_ASSETS_URL
from shared.timeutil import now_iso

VERSION = "1.0.0"
DESCRIPTIONS = {
    "customer": "Customer management, authentication, and profiles",
    "sellers": "Seller management, authentication, and business profiles",
    "media": "File upload, media management, and storage",
    "products": "Product catalog, inventory, and management",
    "orders": "Order processing, cart management, and inventory",
    "admin": "Admin dashboard, statistics, and service monitoring",
    "notifications": "Email notifications, templates, and messaging",
}
EXAMPLES = {
    "customer_signup": "POST /api/customer/customers/signup",
    "seller_signin": "POST /api/sellers/sellers/signin",
    "upload_media": "POST /api/media/media/upload",
    "list_products": "GET /api/products/products",
    "place_order": "POST /api/orders/orders/place",
    "dashboard_stats": "GET /api/admin/dashboard/stats",
    "send_email": "POST /api/notifications/send",
}
SWAGGER_TITLE = "API Gateway — documentation"
OPENAPI_CACHE_SECONDS = 60.0

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_BINARY = {"schema": {"type": "string", "format": "binary"}}
_PROMETHEUS = {"description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}}
MEDIA_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The file, streamed as media serves it (`Cache-Control: public, max-age=86400`)",
        "content": {"image/*": _BINARY, "application/octet-stream": _BINARY},
    },
    206: {"description": "The requested range", "content": {"image/*": _BINARY, "application/octet-stream": _BINARY}},
    304: {"description": "Not modified (`If-None-Match`/`If-Modified-Since`)"},
    **errors(400, 404, 416, 502, 503, 504, model=MediaError),
    **COMMON,
}

router = APIRouter()


def _gw(request: Request) -> Any:
    return request.app.state.gateway


def probe_error(exc: BaseException, timeout_ms: int) -> str:
    """The short text ``/api/status`` and ``x-services`` give for a failed call."""
    if isinstance(exc, asyncio.TimeoutError):
        return f"Timeout after {timeout_ms}ms"
    if isinstance(exc, aiohttp.ClientConnectorError) and isinstance(exc.os_error, ConnectionRefusedError):
        return "Connection refused"
    return str(exc) or exc.__class__.__name__


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


async def _get(up: Upstream, path: str, timeout_ms: int, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """One GET to a service within ``timeout_ms`` in all (bypasses the breaker)."""
    assert up.session is not None
    timeout = aiohttp.ClientTimeout(total=timeout_ms / 1000)
    async with up.session.get(up.base_url + path, headers=headers, timeout=timeout, allow_redirects=False) as resp:
        return resp.status, await resp.read()


@router.get("/health", response_model=HealthPublic, responses=errors(500, model=InternalError))
async def health(request: Request) -> JSONResponse:
    """Gateway liveness; no dependency is checked."""
    gw = _gw(request)
    return JSONResponse(
        {
            "success": True,
            "service": "api-gateway",
            "status": "healthy",
            "timestamp": now_iso(),
            "uptime": round(time.monotonic() - gw.started_at, 3),
            "services": list(SERVICES),
            "version": VERSION,
        }
    )


@router.get("/api/status", response_model=StatusPublic, responses=COMMON)
async def status(request: Request) -> JSONResponse:
    """Health of all seven services, probed concurrently, each within ``HEALTH_TIMEOUT_MS``."""
    gw = _gw(request)
    timeout_ms = gw.settings.HEALTH_TIMEOUT_MS

    async def probe(up: Upstream) -> dict[str, Any]:
        started = time.perf_counter()
        entry: dict[str, Any] = {"status": "unhealthy", "url": up.base_url}
        try:
            code, body = await _get(up, "/health", timeout_ms)
        except Exception as exc:
            entry["error"] = probe_error(exc, timeout_ms)
        else:
            parsed = _parse_json(body)
            if 200 <= code < 300:
                entry["status"] = "healthy"
                entry["responseTime"] = f"{round((time.perf_counter() - started) * 1000)}ms"
                entry["response"] = parsed
            else:
                entry["error"] = f"HTTP {code}"
                if parsed is not None:
                    entry["response"] = parsed
        entry["circuit"] = up.breaker.snapshot()
        return entry

    results = await asyncio.gather(*(probe(up) for up in gw.upstreams.values()))
    return JSONResponse(
        {
            "success": True,
            "gateway": "healthy",
            "timestamp": now_iso(),
            "services": {up.name: result for up, result in zip(gw.upstreams.values(), results, strict=True)},
        }
    )


@router.get("/api/docs", response_model=DocsDirectory, responses=COMMON)
async def api_docs(request: Request) -> JSONResponse:
    """The static directory of services."""
    gw = _gw(request)
    return JSONResponse(
        {
            "success": True,
            "message": "API Gateway Documentation",
            "gateway": {
                "version": VERSION,
                "port": gw.settings.PORT,
                "endpoints": {"health": "GET /health", "status": "GET /api/status", "docs": "GET /api/docs"},
            },
            "services": {
                up.name: {"prefix": up.prefix.decode(), "target": up.base_url, "description": DESCRIPTIONS[up.name]}
                for up in gw.upstreams.values()
            },
            "examples": EXAMPLES,
        }
    )


def swagger_page() -> HTMLResponse:
    # Swagger UI's assets are served by the gateway itself (fastapi-offline's copy), not a CDN.
    return get_swagger_ui_html(
        openapi_url="/docs/openapi.json",
        title=SWAGGER_TITLE,
        swagger_js_url=f"{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS_ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{DOCS_ASSETS_URL}/favicon.png",
    )


@router.get("/docs", response_class=HTMLResponse, responses={200: {"description": "Swagger UI"}, **COMMON_JSON})
async def docs() -> HTMLResponse:
    """Swagger UI over the merged document."""
    return swagger_page()


@router.get("/docs/openapi.json", response_model=dict[str, Any], responses=COMMON)
@router.get("/openapi.json", include_in_schema=False)
async def openapi_document(request: Request) -> JSONResponse:
    """The merged OpenAPI document of every service (cached 60 s)."""
    gw = _gw(request)
    async with gw.openapi_lock:
        cached = gw.openapi_cache
        if cached is None or time.monotonic() - cached[0] > OPENAPI_CACHE_SECONDS:
            cached = (time.monotonic(), await _build_openapi(gw))
            gw.openapi_cache = cached
    return JSONResponse(cached[1])


async def _build_openapi(gw: Any) -> dict[str, Any]:
    timeout_ms = gw.settings.HEALTH_TIMEOUT_MS
    key = {"X-Service-Key": gw.settings.outgoing_service_key}

    async def fetch(up: Upstream) -> tuple[str, str, str, dict[str, Any] | None, str | None]:
        url = up.base_url + "/openapi.json"
        try:
            code, body = await _get(up, "/openapi.json", timeout_ms, key)
        except Exception as exc:
            return up.name, up.prefix.decode(), url, None, probe_error(exc, timeout_ms)
        doc = _parse_json(body) if code == 200 else None
        if not isinstance(doc, dict):
            return up.name, up.prefix.decode(), url, None, f"HTTP {code}" if code != 200 else "Invalid JSON"
        return up.name, up.prefix.decode(), url, doc, None

    fetched = await asyncio.gather(*(fetch(up) for up in gw.upstreams.values()))
    return merge(gw.own_openapi(), list(fetched))


@router.get("/metrics", response_class=PlainTextResponse, responses={200: _PROMETHEUS, **COMMON_JSON})
async def metrics(request: Request) -> Response:
    """Prometheus text: the common request metrics and the gateway's own."""
    return Response(generate_latest(_gw(request).metrics_registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/media/{media_id}", response_class=Response, responses=MEDIA_RESPONSES)
@router.head("/media/{media_id}", include_in_schema=False)
async def media_file(media_id: str, request: Request) -> Response:
    """Stream an original media file from the media service."""
    return await _serve_media(request, media_id, "/api/v1/media/serve/", "Media not found")


@router.get("/thumb/{media_id}", response_class=Response, responses=MEDIA_RESPONSES)
@router.head("/thumb/{media_id}", include_in_schema=False)
async def media_thumbnail(media_id: str, request: Request) -> Response:
    """Stream a thumbnail from the media service."""
    return await _serve_media(request, media_id, "/api/v1/media/serve-thumb/", "Thumbnail not found")


class _Proxied(Response):
    """An answer the proxy streams itself (through the ``send`` the edge wrapped)."""

    def __init__(self, handler: Any) -> None:  # no super().__init__: nothing is rendered here
        self.background = None
        self.handler = handler

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.handler(scope, receive, send)


async def _serve_media(request: Request, media_id: str, serve_path: str, missing: str) -> Response:
    """A well-formed id goes to media through the proxy's breaker, call and answer steps."""
    if not _UUID.fullmatch(media_id):
        body = {"success": False, "message": "Invalid media ID format", "media_id": media_id}
        return JSONResponse(body, status_code=400, headers={"X-Service-Name": "media"})
    gw = _gw(request)

    async def forward(scope: Any, receive: Any, send: Any) -> None:
        await gw.proxy.media(
            scope,
            receive,
            send,
            gw.upstreams["media"],
            serve_path=serve_path,
            media_id=media_id,
            missing=missing,
            timeout=gw.media_timeout,
        )

    return _Proxied(forward)
