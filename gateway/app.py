"""``create_app(settings)``: the gateway's FastAPI app with the edge middleware in front.

The gateway's own endpoints are FastAPI routes; ``/api/<service>/…`` never reaches the router:
the edge (:mod:`gateway.edge`) hands it to the proxy (:mod:`gateway.proxy`). The aiohttp
sessions (one keep-alive pool per service) are opened in the lifespan and closed after it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import math
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway import api, status_page
from gateway.breaker import STATE_CODES, CircuitBreaker
from gateway.edge import Edge, GatewayMetrics
from gateway.forwarding import ClientResolver
from gateway.proxy import Proxy, Upstream, new_session
from gateway.ratelimit import GatewayRateLimiter
from gateway.settings import SERVICES, GatewaySettings
from shared.app import DOCS_ASSETS_DIR, DOCS_ASSETS_URL, HttpMetrics, configure_logging, tidy_openapi, tune_if_served
from shared.responses import error_response, install_error_handlers
from shared.timeutil import now_iso


class GatewayState:
    """What the gateway's routes share: settings, upstreams (with sessions and breakers), caches."""

    def __init__(self, settings: GatewaySettings, app: FastAPI, metrics: GatewayMetrics, registry: Any) -> None:
        self.settings = settings
        self.started_at = time.monotonic()
        self.metrics_registry = registry
        cooldown = settings.CIRCUIT_COOLDOWN_MS / 1000
        self.upstreams: dict[str, Upstream] = {}
        for name, url in settings.service_urls().items():
            gauge = metrics.circuit_state.labels(name)
            breaker = CircuitBreaker(
                threshold=settings.CIRCUIT_FAILURE_THRESHOLD,
                cooldown_seconds=cooldown,
                on_change=lambda state, gauge=gauge: gauge.set(STATE_CODES[state]),
            )
            self.upstreams[name] = Upstream(name, url, breaker)
        media_seconds = settings.MEDIA_TIMEOUT_MS / 1000
        self.media_timeout = aiohttp.ClientTimeout(
            total=None, connect=media_seconds, sock_connect=media_seconds, sock_read=media_seconds
        )
        self.openapi_lock = asyncio.Lock()
        self.openapi_cache: tuple[float, dict[str, Any]] | None = None
        self._app = app
        self._own_openapi: dict[str, Any] | None = None
        self.proxy: Proxy | None = None

    def own_openapi(self) -> dict[str, Any]:
        """The OpenAPI description of the gateway's own routes."""
        if self._own_openapi is None:
            document = get_openapi(title="api-gateway", version=api.VERSION, routes=self._app.routes)
            self._own_openapi = tidy_openapi(document)
        return self._own_openapi

    async def open(self) -> None:
        for up in self.upstreams.values():
            up.session = new_session(
                timeout_ms=self.settings.PROXY_TIMEOUT_MS, max_connections=self.settings.PROXY_MAX_CONNECTIONS
            )

    async def close(self) -> None:
        for up in self.upstreams.values():
            if up.session is not None:
                await up.session.close()
                up.session = None


def _docs_csp() -> str:
    """The CSP of the ``/docs`` page: Swagger UI's assets and its one inline script (by hash)."""
    html = api.swagger_page().body.decode()
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in re.findall(r"<script>(.*?)</script>", html, flags=re.S)
    )
    return (
        f"default-src 'self';base-uri 'self';connect-src 'self';font-src 'self' data:;form-action 'self';"
        f"frame-ancestors 'none';img-src 'self' data:;object-src 'none';"
        f"script-src 'self' {hashes};script-src-attr 'none';style-src 'self' 'unsafe-inline'"
    )


class GatewayApp(FastAPI):
    """FastAPI with the edge outermost: proxied requests skip FastAPI's own layers (its
    per-request telemetry check, server-error, body-limit and exception middlewares) and go
    straight to the proxy; the gateway's own routes still get all of them."""

    edge_options: dict[str, Any]

    def build_middleware_stack(self) -> Any:
        return Edge(super().build_middleware_stack(), **self.edge_options)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        if self.middleware_stack is None:
            self.middleware_stack = self.build_middleware_stack()
        scope["app"] = self
        await self.middleware_stack(scope, receive, send)


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    """Build the gateway app for ``settings`` (read from the environment when omitted)."""
    settings = settings or GatewaySettings()
    configure_logging(settings, "gateway")
    common = HttpMetrics("gateway")
    metrics = GatewayMetrics(common, SERVICES)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await state.open()
        tune_if_served()
        try:
            yield
        finally:
            await state.close()

    app = GatewayApp(
        title="api-gateway", version=api.VERSION, lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    state = GatewayState(settings, app, metrics, common.registry)
    app.state.settings = settings
    app.state.service = "gateway"
    app.state.gateway = state
    install_error_handlers(app)
    available = [f"/api/{name}" for name in SERVICES]

    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return JSONResponse(
                {
                    "success": False,
                    "message": "Route not found",
                    "availableServices": available,
                    "documentation": "/api/docs",
                    "timestamp": now_iso(),
                },
                status_code=404,
            )
        if exc.status_code == 405:
            message = "Method not allowed"
        else:
            message = exc.detail if isinstance(exc.detail, str) else "Request failed"
        return error_response(exc.status_code, message, headers=getattr(exc, "headers", None))

    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        body = {
            "success": False,
            "message": "Internal Gateway Error",
            "timestamp": now_iso(),
            "requestId": request.scope.get("state", {}).get("request_id"),
        }
        return JSONResponse(body, status_code=500)

    app.add_exception_handler(StarletteHTTPException, http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, internal_error)
    app.include_router(api.router)
    app.include_router(status_page.router)
    app.mount(DOCS_ASSETS_URL, StaticFiles(directory=DOCS_ASSETS_DIR), name="docs-assets")

    limiter = GatewayRateLimiter(
        max_hits=settings.RATE_LIMIT_MAX,
        window_seconds=math.ceil(settings.RATE_LIMIT_WINDOW_MS / 1000),
        redis_url=settings.REDIS_URL,
        prefix="ratelimit",
    )
    state.proxy = Proxy(
        max_json_bytes=settings.MAX_JSON_BODY_BYTES,
        gzip_min_bytes=settings.GZIP_MIN_BYTES,
        forward_service_key=settings.GATEWAY_FORWARD_SERVICE_KEY,
    )
    app.edge_options = dict(
        upstreams={name.encode(): up for name, up in state.upstreams.items()},
        proxy=state.proxy,
        limiter=limiter,
        resolver=ClientResolver(settings.trusted_networks),
        metrics=metrics,
        cors_origins=settings.cors_origins,
        docs_csp=_docs_csp(),
        json_logs=settings.LOG_FORMAT == "json",
    )
    return app
