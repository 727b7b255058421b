"""The common app factory every service is built with.

:func:`create_service_app` gives a FastAPI app with: the error handlers of
``shared.responses``; one pure-ASGI middleware doing request ids, security headers, the
body-size and content-type guard, one access-log line per request, Prometheus metrics and
the 500 envelope; CORS; ``GET /health`` (a store ping kept fresh by ``shared.health``) and
``GET /metrics``.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import re
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import TYPE_CHECKING, Any

import fastapi_offline
from fastapi import APIRouter, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.context import request_id_var
from shared.health import HealthCheck, HealthMonitor
from shared.metrics import RequestTally
from shared.responses import ERROR_DESCRIPTIONS, ErrorEnvelope, install_error_handlers
from shared.settings import ServiceSettings
from shared.store import DocumentStore
from shared.timeutil import now_iso

if TYPE_CHECKING:  # annotations only: shared.clients loads httpx, which the gateway never uses
    from shared.clients import Closable

# Security headers, the one list: every answer of a service and of the gateway carries the
# common ones; a service adds its same-site CORP, the gateway (internet-facing, helmet-like,
# gateway contract §7.5) its own extras plus the CSP and, over HTTPS, HSTS.
_COMMON_SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-xss-protection", b"0"),
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    *_COMMON_SECURITY_HEADERS,
    (b"cross-origin-resource-policy", b"same-site"),
)
GATEWAY_SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    *_COMMON_SECURITY_HEADERS,
    (b"x-dns-prefetch-control", b"off"),
    (b"x-download-options", b"noopen"),
    (b"x-permitted-cross-domain-policies", b"none"),
)
CSP = (
    "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';"
    "frame-ancestors 'none';img-src 'self' data:;object-src 'none';script-src 'self';"
    "script-src-attr 'none';style-src 'self' https: 'unsafe-inline'"
)
HSTS = (b"strict-transport-security", b"max-age=15552000; includeSubDomains")

# One-time secrets that travel in URL paths (``/verify-email/<token>``, ``/reset-password/<token>``):
# the segment after these names never reaches a log line.
_SECRET_PATH = re.compile(r"(/(?:verify-email|reset-password|confirm-email|password-reset)/)[^/]+")
REDACTED = "[redacted]"


def redact_path(path: str) -> str:
    """``path`` with the secret segment of token links replaced by ``[redacted]``."""
    if "/verify-email/" not in path and "reset/" not in path and "password/" not in path and "-email/" not in path:
        return path
    return _SECRET_PATH.sub(r"\1" + REDACTED, path)


DOCS_ASSETS_URL = "/docs/assets"
"""Where every app serves Swagger UI's script, styles and icon (from fastapi-offline)."""
DOCS_ASSETS_DIR = str(Path(fastapi_offline.__file__).resolve().parent / "static")
"""The folder of those assets, inside the installed fastapi-offline package."""

Hook = Callable[[FastAPI], Awaitable[None]]

_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
_MAX_REQUEST_ID = 128


def configure_logging(settings: ServiceSettings, service: str | None = None) -> None:
    """Set up the root logger once: plain text or JSON lines (``LOG_FORMAT=json``) on the
    console, and also to a size-rotated file when ``LOG_FILE`` or ``LOG_DIR`` is set."""
    root = logging.getLogger()
    if getattr(root, "_shop_configured", False):
        return
    plain = settings.LOG_FORMAT != "json"
    formatter = _Formatter("%(asctime)s %(levelname)s %(name)s %(message)s") if plain else _JsonFormatter()
    console = _ConsoleHandler(sys.stdout)
    handlers: list[logging.Handler] = [console]
    log_file = log_file_path(settings, service)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(
            RotatingFileHandler(
                log_file,
                maxBytes=settings.LOG_FILE_MAX_BYTES,
                backupCount=settings.LOG_FILE_BACKUPS,
                encoding="utf-8",
            )
        )
    for handler in handlers:
        handler.setFormatter(formatter)
    if plain:
        console.plain_formatter = formatter
    root.handlers[:] = handlers
    root.setLevel(settings.LOG_LEVEL.upper())
    root._shop_configured = True  # type: ignore[attr-defined]


def log_file_path(settings: ServiceSettings, service: str | None) -> Path | None:
    """``LOG_FILE`` as given, else ``LOG_DIR/<service>.log``, else None (console only)."""
    if settings.LOG_FILE:
        return Path(settings.LOG_FILE)
    if settings.LOG_DIR:
        return Path(settings.LOG_DIR) / f"{service or 'service'}.log"
    return None


class _ConsoleHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The console handler, flushed once per event-loop iteration rather than after every line
    while a loop runs (a service writes a line per request, and each flush is a ``write`` system
    call); at once outside a loop (start-up, other threads, exit). The per-request lines of
    :meth:`write_info` wait in a list until then and go to the stream as one string, ahead of
    any other line (order is kept)."""

    _flush_loop: asyncio.AbstractEventLoop | None = None  # the loop a flush is scheduled on
    plain_formatter: _Formatter | None = None  # the text formatter configure_logging gave it

    def __init__(self, stream: Any = None) -> None:
        super().__init__(stream)
        self._pending: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if self._pending:
            self._write_pending()
        super().emit(record)

    def flush(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._write_pending()
            super().flush()
            return
        if self._flush_loop is not loop:
            self._flush_loop = loop
            loop.call_soon(self._flush_now)

    def _flush_now(self) -> None:
        self._flush_loop = None
        self._write_pending()
        super().flush()

    def _write_pending(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            pending = self._pending
            if not pending:
                return
            self._pending = []
            try:
                self.stream.write("".join(pending))
            except Exception:
                self.handleError(logging.makeLogRecord({"msg": "".join(pending), "levelname": "INFO"}))

    def write_info(self, name: str, message: str) -> None:
        """``name``'s INFO line ``message``, stamped now, as :meth:`handle` writes a record's."""
        self._pending.append(f"{self.plain_formatter.time_text(time.time())} INFO {name} {message}\n")
        scheduled = self._flush_loop
        if scheduled is None or scheduled.is_closed():  # else a flush is due this iteration
            self.flush()  # (asking for the running loop costs a getpid system call)


def write_info_line(logger: logging.Logger, message: str) -> bool:
    """Write ``message`` as ``logger.info(message)`` would (the caller checked the level), but
    without making a record, when the console handler of :func:`configure_logging` alone writes
    ``logger``'s lines in the text format: no other handler, filter or formatter on the way. For
    a line per request, where a record and the handlers' generic steps cost five times the
    line. False when that is not so (JSON lines, a log file, a test's capture handler): then
    log it the usual way."""
    root = logging.root
    handlers = root.handlers
    if len(handlers) != 1 or logger.filters or logger.disabled:
        return False
    handler = handlers[0]
    if (
        handler.__class__ is not _ConsoleHandler
        or handler.filters
        or handler.level > logging.INFO
        or handler.formatter is not handler.plain_formatter  # type: ignore[attr-defined]
    ):
        return False
    node: logging.Logger | None = logger
    while node is not root and node is not None:
        if node.handlers or not node.propagate:
            return False
        node = node.parent
    handler.write_info(logger.name, message)  # type: ignore[attr-defined]
    return True


_MILLISECONDS = tuple(f",{ms:03d}" for ms in range(1000))


class _Formatter(logging.Formatter):
    """``logging.Formatter`` made cheaper for a line per request, with the same text: the date
    and time written once a second, the milliseconds from a table, and whether the format
    shows the time decided once rather than searched for on every line."""

    _second: tuple[int, str] = (-1, "")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._uses_time = super().usesTime()

    def usesTime(self) -> bool:
        return self._uses_time

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None or self.default_msec_format != "%s,%03d":
            return super().formatTime(record, datefmt)
        ms = int(record.msecs)
        if not 0 <= ms < 1000:
            return super().formatTime(record, datefmt)
        return self._second_text(record.created) + _MILLISECONDS[ms]

    def time_text(self, created: float) -> str:
        """What :meth:`formatTime` writes for a record made at ``created``."""
        return self._second_text(created) + _MILLISECONDS[min(999, int((created - int(created)) * 1000))]

    def _second_text(self, created: float) -> str:
        second = int(created)
        cached = self._second
        if cached[0] != second:
            cached = self._second = (second, time.strftime(self.default_time_format, self.converter(created)))
        return cached[1]


class _JsonFormatter(_Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        payload.update(getattr(record, "fields", {}))
        return json.dumps(payload)


class HttpMetrics:
    """Request counts and latency histograms by route and status, in a registry of their own
    (several apps can live in one process, as in tests)."""

    def __init__(self, service: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.tally = RequestTally(
            self.registry,
            counter=("http_requests_total", "HTTP requests", ("method", "route", "status")),
            histogram=("http_request_duration_seconds", "HTTP request latency", ("method", "route")),
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count a request by method, route and status, and its duration by method and route."""
        self.tally.observe((method, route, str(status)), (method, route), seconds)


def _envelope_bytes(status: int, message: str, **extra: Any) -> bytes:
    return json.dumps({"success": False, "message": message, **extra}).encode()


class RequestMiddleware:
    """Request id, security headers, body guard, access log, metrics and the 500 envelope.

    Written as pure ASGI (not ``BaseHTTPMiddleware``) so bodies stream through untouched.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        service: str,
        metrics: HttpMetrics,
        max_json_bytes: int,
        raw_body_paths: Sequence[str] = (),
        health: HealthMonitor | None = None,
    ) -> None:
        self.app = app
        self.health = health
        self.metrics = metrics
        self.max_json_bytes = max_json_bytes
        self.raw_body_paths = tuple(raw_body_paths)
        self.log = logging.getLogger(f"{service}.access")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope["headers"])
        request_id = headers.get(b"x-request-id", b"").decode("latin-1")[:_MAX_REQUEST_ID]
        if not request_id or not request_id.isprintable():
            request_id = str(uuid.uuid4())
        token = request_id_var.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        method = scope["method"]
        status_holder: dict[str, Any] = {"status": 500, "started": False, "refused": None}
        rid_header = (b"x-request-id", request_id.encode())
        if self.health is not None:
            self.health.in_flight += 1  # /health answers from its kept verdict while others run

        async def send_wrapper(message: Message) -> None:
            refused = status_holder["refused"]
            if refused is not None:
                # The body guard refused the body while the app read it and the app answered
                # its own 400 ("error parsing the body"): send the guard's answer instead.
                if message["type"] == "http.response.start":
                    await reject(*refused)
                    status_holder["refused"] = ()
                return
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["started"] = True
                out = list(message.get("headers", []))
                present = {name.lower() for name, _ in out}
                out.append(rid_header)
                # A header the route set itself (e.g. media's cross-origin CORP) wins.
                out.extend(h for h in SECURITY_HEADERS if h[0] not in present)
                message = {**message, "headers": out}
            await send(message)

        async def reject(status: int, text: str) -> None:
            body = _envelope_bytes(status, text)
            status_holder["refused"] = None  # lets the answer below through send_wrapper
            await send_wrapper(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
                }
            )
            await send({"type": "http.response.body", "body": body})

        try:
            guarded_receive = receive
            path = scope["path"]
            if method in _BODY_METHODS and not path.startswith(self.raw_body_paths):
                verdict = self._check_body_headers(headers)
                if verdict is not None:
                    await reject(*verdict)
                    return
                guarded_receive = self._guarded_receive(receive, status_holder)
            try:
                await self.app(scope, guarded_receive, send_wrapper)
            except _BodyRefused as refused:
                if not status_holder["started"]:
                    await reject(refused.status, refused.text)
        except Exception:
            logging.getLogger("shared.app").exception("unhandled error (request id %s)", request_id)
            if not status_holder["started"]:
                body = _envelope_bytes(500, "Internal server error", requestId=request_id)
                await send_wrapper(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send({"type": "http.response.body", "body": body})
        finally:
            if self.health is not None:
                self.health.in_flight -= 1
            request_id_var.reset(token)
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            route_path = getattr(route, "path", "unmatched")
            status = status_holder["status"]
            self.metrics.observe(method, route_path, status, elapsed)
            if route_path not in ("/health", "/metrics"):
                logged_path = redact_path(scope["path"])
                self.log.info(
                    "%s %s %s %.1fms rid=%s",
                    method,
                    logged_path,
                    status,
                    elapsed * 1000,
                    request_id,
                    extra={
                        "fields": {
                            "method": method,
                            "path": logged_path,
                            "status": status,
                            "durationMs": round(elapsed * 1000, 1),
                            "requestId": request_id,
                        }
                    },
                )

    def _check_body_headers(self, headers: dict[bytes, bytes]) -> tuple[int, str] | None:
        length = headers.get(b"content-length")
        if length is not None:
            try:
                size = int(length)
            except ValueError:
                return 400, "Invalid Content-Length"
            if size > self.max_json_bytes:
                return 413, "Request body too large"
            if size == 0:
                return None
        elif b"transfer-encoding" not in headers:
            return None
        ctype = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if ctype and ctype != b"application/json" and not ctype.endswith(b"+json"):
            return 415, "Content-Type must be application/json"
        return None

    def _guarded_receive(self, receive: Receive, state: dict[str, Any]) -> Receive:
        """Read the whole JSON body (at most ``max_json_bytes``, also when sent chunked) and
        refuse text with lone surrogates, then hand it to the app as one message."""
        limit = self.max_json_bytes
        delivered = False

        async def wrapped() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()
            chunks: list[bytes] = []
            seen = 0
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return message
                chunk = message.get("body", b"")
                seen += len(chunk)
                if seen > limit:
                    state["refused"] = (413, "Request body too large")
                    raise _BodyRefused(413, "Request body too large")
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
            body = b"".join(chunks)
            if has_lone_surrogate(body):
                state["refused"] = (400, "Request body contains invalid text (lone surrogate)")
                raise _BodyRefused(400, "Request body contains invalid text (lone surrogate)")
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        return wrapped


class _BodyRefused(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status, self.text = status, text


# A JSON escape of a UTF-16 surrogate, or UTF-8 bytes that decode to one (json.loads on bytes
# decodes with "surrogatepass"). Only bodies holding either are parsed here.
_SURROGATE_HINT = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}|\xed[\xa0-\xbf]")


def has_lone_surrogate(body: bytes) -> bool:
    """True when a JSON body holds a string (or key) with an unpaired UTF-16 surrogate,
    which no store can encode. Malformed JSON is left to the route's own parsing."""
    if not _SURROGATE_HINT.search(body):
        return False
    try:
        value = json.loads(body)
    except ValueError:
        return False
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


async def _call_if_present(part: object, name: str) -> bool:
    method = getattr(part, name, None)
    if method is None:
        return False
    await method()
    return True


@asynccontextmanager
async def run_lifecycle(
    app: FastAPI,
    *,
    store: DocumentStore | None = None,
    parts: Sequence[object] = (),
    closing: Sequence[Closable] = (),
    on_startup: Sequence[Hook] = (),
) -> AsyncIterator[None]:
    """Start a service's parts in order and stop them in reverse, also when start-up fails.

    Start-up: ``store.connect()``; each part's ``create_indexes()`` (where it has one); the
    ``on_startup`` hooks (migrations, bootstrap: they run on indexed collections, before any
    background task); each part's ``start()``. Shut-down, and the undo of a start-up that
    raised: each started part's ``stop()`` in reverse, ``closing`` in reverse, the store last.
    """
    async with AsyncExitStack() as stack:
        if store is not None:
            await store.connect()
            stack.push_async_callback(store.close)
        for closable in closing:
            stack.push_async_callback(closable.aclose)
        for part in parts:
            await _call_if_present(part, "create_indexes")
        for hook in on_startup:
            await hook(app)
        for part in parts:
            if await _call_if_present(part, "start") and hasattr(part, "stop"):
                stack.push_async_callback(part.stop)  # type: ignore[attr-defined]
        yield


def create_service_app(
    settings: ServiceSettings,
    *,
    service: str,
    routers: Iterable[APIRouter] = (),
    health_check: HealthCheck | None = None,
    on_startup: Sequence[Hook] = (),
    on_shutdown: Sequence[Hook] = (),
    store: DocumentStore | None = None,
    parts: Sequence[object] = (),
    closing: Sequence[Closable] = (),
    metrics_registry: CollectorRegistry | None = None,
    raw_body_paths: Sequence[str] = (),
    title: str | None = None,
) -> FastAPI:
    """Build a service app.

    ``service`` is the short name (``customer``); ``/health`` answers ``<service>-service``.
    ``health_check`` (default ``store.ping`` when a ``store`` is given) decides healthy (200)
    vs unhealthy (503); it may return a mapping of extra fields for a healthy answer. It runs in
    the background every ``HEALTH_REFRESH_SECONDS`` and live when nothing else is in flight
    (``shared.health``). ``app.state.metrics_registry`` is the Prometheus registry behind
    ``/metrics`` (a new one, or ``metrics_registry``), for service-specific metrics.

    The lifespan (see :func:`run_lifecycle`) connects ``store``, gives every one of ``parts``
    its ``create_indexes()``, runs the ``on_startup`` hooks, then each part's ``start()``, then
    starts the health refresh; on the way out the refresh stops, the ``on_shutdown`` hooks run
    (reverse order), the parts ``stop()`` (reverse order), ``closing`` is closed (reverse
    order) and the store last.
    ``raw_body_paths`` are path prefixes exempt from the JSON body guard (uploads).
    """
    configure_logging(settings, service)
    metrics = HttpMetrics(service, metrics_registry)
    health_name = f"{service}-service" if service != "gateway" else "api-gateway"
    if health_check is None and store is not None:
        health_check = store.ping
    monitor = HealthMonitor(
        health_check,
        refresh_seconds=settings.HEALTH_REFRESH_SECONDS,
        timeout_seconds=settings.HEALTH_CHECK_TIMEOUT_SECONDS,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with run_lifecycle(app, store=store, parts=parts, closing=closing, on_startup=on_startup):
            tune_if_served()  # after start-up, so what it made is frozen too
            monitor.start()
            try:
                yield
            finally:
                await monitor.stop()
                for hook in reversed(on_shutdown):
                    await hook(app)

    # Swagger UI's script and styles come from the fastapi-offline package, not a CDN, so
    # /docs renders on a closed network too.
    app = FastAPIOffline(
        title=title or health_name,
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",
        redoc_url=None,
        static_url=DOCS_ASSETS_URL,
    )
    install_openapi(app)
    app.state.settings = settings
    app.state.service = service
    app.state.metrics_registry = metrics.registry
    if store is not None:
        app.state.store = store
    app.state.health = monitor
    install_error_handlers(app)

    @app.get("/health", include_in_schema=False)
    async def health() -> JSONResponse:
        healthy, extra = await monitor.verdict()
        body = {
            "success": healthy,
            "service": health_name,
            "status": "healthy" if healthy else "unhealthy",
            "timestamp": now_iso(),
            **extra,
        }
        return JSONResponse(body, status_code=200 if healthy else 503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics_endpoint() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    for router in routers:
        app.include_router(router)

    origins = settings.cors_origins
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_credentials="*" not in origins,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "X-Request-ID", "X-Service-Key", "Idempotency-Key"],
        expose_headers=["X-Request-ID", "Retry-After"],
        max_age=600,
    )
    app.add_middleware(
        RequestMiddleware,
        service=service,
        metrics=metrics,
        max_json_bytes=settings.MAX_JSON_BODY_BYTES,
        raw_body_paths=raw_body_paths,
        health=monitor,
    )
    return app


_BODY_METHOD_NAMES = {m.lower() for m in _BODY_METHODS}
_ERROR_REF = {"$ref": "#/components/schemas/ErrorEnvelope"}


def _error_doc(code: int) -> dict[str, Any]:
    return {
        "description": ERROR_DESCRIPTIONS.get(code, "Error"),
        "content": {"application/json": {"schema": _ERROR_REF}},
    }


def tidy_openapi(document: dict[str, Any]) -> dict[str, Any]:
    """Make a FastAPI document say what the service really answers.

    422 is removed everywhere (validation answers 400); every operation with parameters or a
    body documents 400; every body method documents 413 and 415, which the request guard
    answers before any route runs. The error envelope is published once as ``ErrorEnvelope``.
    """
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name, schema in ErrorEnvelope.model_json_schema(ref_template="#/components/schemas/{model}").get(
        "$defs", {}
    ).items():
        schemas.setdefault(name, schema)
    envelope_schema = ErrorEnvelope.model_json_schema(ref_template="#/components/schemas/{model}")
    envelope_schema.pop("$defs", None)
    schemas.setdefault("ErrorEnvelope", envelope_schema)
    for item in document.get("paths", {}).values():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            responses.pop("422", None)
            if operation.get("parameters") or operation.get("requestBody"):
                responses.setdefault("400", _error_doc(400))
            if method in _BODY_METHOD_NAMES:
                for code in (400, 413, 415):
                    responses.setdefault(str(code), _error_doc(code))
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return document


def install_openapi(app: FastAPI) -> None:
    """Serve the tidied document (see :func:`tidy_openapi`) at the app's ``openapi_url``."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = tidy_openapi(document)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def app_state(name: str) -> Callable[[Request], Awaitable[Any]]:
    """A dependency answering ``request.app.state.<name>`` (a service's domain object, set by
    its ``create_app``): ``Annotated[Orders, Depends(app_state("orders"))]``."""

    async def dependency(request: Request) -> Any:
        return getattr(request.app.state, name)

    return dependency


# Set by serve(): the process (or each uvicorn worker it spawns) serves for real, not a test.
_SERVED_ENV = "SHARED_APP_SERVED"
GC_GEN0_THRESHOLD = 10_000


def tune_for_latency() -> None:
    """Process-wide settings that keep the event loop answering (``/health`` too) under load.

    ``gc.freeze()``: what import and app creation made lives as long as the process; frozen, a
    full collection no longer walks it (notifications under a send burst: full collections of
    45-280 ms before, ~5 ms after). A switch interval of 1 ms instead of 5: a worker thread
    (SQLite, rendering, message building) holding the GIL hands it back to the loop sooner.
    Generation 0 waits for 10,000 net new objects instead of 700: with many requests in flight
    their objects kept it over the default, so it ran ~200 times a second and promoted them
    (the gateway at 50 connections spent 1 s of CPU in 7 collecting). Cycles are still
    collected, less often. Only for a served process: a test run keeps its normal collector.
    """
    gc.collect()  # start-up garbage is freed rather than frozen
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)
    sys.setswitchinterval(0.001)


def tune_if_served() -> None:
    """:func:`tune_for_latency` when :func:`serve` runs this process (a lifespan's start-up)."""
    if os.environ.get(_SERVED_ENV) == "1":
        tune_for_latency()


def serve(app_factory: Callable[[ServiceSettings], FastAPI], settings: ServiceSettings, *, http: Any = "auto") -> None:
    """Run ``app_factory(settings)`` with uvicorn on ``HOST:PORT`` (the ``__main__`` of a service).

    ``http`` is uvicorn's HTTP protocol (a name, or a protocol class such as the gateway's).

    With ``WEB_CONCURRENCY`` above 1, uvicorn runs that many worker processes on the one socket;
    each builds its own app by calling ``app_factory()`` (by import path, so it must be a
    module-level function) with settings read from the environment, as ``settings`` were.
    """
    import uvicorn

    workers = settings.WEB_CONCURRENCY
    target = factory_path(app_factory) if workers > 1 else None  # refused before anything starts
    app = app_factory(settings)  # configures logging with the service's name (LOG_DIR file)
    service = app.state.service
    configure_logging(settings, service)
    log = logging.getLogger("shared.app")
    os.environ[_SERVED_ENV] = "1"  # worker processes inherit it: each tunes itself after start-up
    options: dict[str, Any] = {
        "host": settings.HOST,
        "port": settings.PORT,
        "log_level": settings.LOG_LEVEL.lower(),
        "http": http,
        "access_log": False,
        "proxy_headers": False,
        "server_header": False,
    }
    if target is None:
        log.info("%s listening on http://%s:%s", service, settings.HOST, settings.PORT)
        uvicorn.run(app, **options)
        return
    if not settings.REDIS_URL:
        log.warning(
            "%s: without REDIS_URL each of the %d processes keeps its own rate-limit counters "
            "(where the service limits a route, a client may make up to %d times the limit)",
            service,
            workers,
            workers,
        )
    log.info("%s listening on http://%s:%s with %d worker processes", service, settings.HOST, settings.PORT, workers)
    del app  # each worker builds its own
    uvicorn.run(target, factory=True, workers=workers, **options)


def factory_path(app_factory: Callable[..., FastAPI]) -> str:
    """``"package.module:function"`` for uvicorn's workers, which import the factory themselves."""
    path = f"{app_factory.__module__}:{app_factory.__qualname__}"
    if "<" in path or app_factory.__module__ == "__main__":
        raise ValueError(f"{path} cannot be imported by a worker process; pass a module-level function")
    return path
