"""The audited, permission-checked service proxy (contract §4.12, §5.3).

``ANY /api/v1/proxy/{service}/{path…}`` → ``<service base>/{path…}?<query>``, the path taken
raw (still percent-encoded) from the request line. Checks run in the contract's order:
token (the route's dependency) → service known (404) → for non-GET/HEAD the audit entry
(503 when it cannot be written; nothing forwarded) → path rules (400) → permission (403) →
JSON body size (413) → forward → the audit entry gets the final status and duration.

Bodies stream both ways through httpx (over aiohttp's pool in production, over
``httpx.ASGITransport`` to real in-process apps in tests); the answer's raw bytes are relayed
unchanged, minus hop-by-hop headers and ``Set-Cookie``. The admin's ``Authorization``,
``Cookie`` and any client ``X-Service-Key`` never reach the target; the configured key does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any, Final

import httpx
from fastapi import Request
from fastapi.responses import Response, StreamingResponse
from httpx_aiohttp import HttpxAiohttpClient

from admin.domain import (
    PROXY_SERVICES,
    Admins,
    AuditContext,
    InsufficientPermissions,
    audited_method,
    proxy_allows,
    proxy_path_is_safe,
)
from admin.errors import as_app_error
from admin.settings import AdminSettings
from shared.auth import SERVICE_KEY_HEADER
from shared.clients import ClientPool
from shared.responses import (
    AppError,
    BadGateway,
    BadRequest,
    GatewayTimeout,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
)
from shared.store import Document

log = logging.getLogger("admin.proxy")

PREFIX: Final = b"/api/v1/proxy/"
HOP_BY_HOP: Final = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
     "transfer-encoding", "upgrade"}
)  # fmt: skip
DROPPED_REQUEST: Final = HOP_BY_HOP | {"authorization", "cookie", "host", "x-service-key", "x-request-id", "expect"}
DROPPED_ANSWER: Final = HOP_BY_HOP | {"set-cookie", "x-request-id"}
NO_BODY_STATUSES: Final = frozenset({204, 304})


class _BodyTooLarge(Exception):
    pass


def split_raw_path(scope: Mapping[str, Any]) -> tuple[str, str | None]:
    """(raw service segment, raw ``{path…}`` or None when nothing follows the service).

    ``raw_path`` is what the client sent, before any decoding (httpx's in-process transport
    appends the query to it; a ``?`` can only start the query, so it is cut there).
    """
    raw: bytes = scope.get("raw_path") or scope["path"].encode()
    raw = raw.split(b"?", 1)[0]
    rest = raw[len(PREFIX) :] if raw.startswith(PREFIX) else b""
    service, slash, path = rest.partition(b"/")
    text = path.decode("latin-1")
    return service.decode("latin-1"), (text if slash and text else None)


class AdminProxy:
    """Forwards admin calls to the six services, one pooled client per service."""

    def __init__(
        self,
        *,
        settings: AdminSettings,
        admins: Admins,
        transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    ) -> None:
        self.settings = settings
        self.admins = admins
        self._transports = dict(transports or {})
        self._clients = ClientPool(self._new_client)
        self.timeout = httpx.Timeout(settings.PROXY_TIMEOUT_MS / 1000)

    def base_url(self, service: str) -> str:
        return f"http://{service}" if service in self._transports else self.settings.service_url(service)

    def _new_client(self, service: str) -> httpx.AsyncClient:
        transport = self._transports.get(service)
        if transport is not None:
            return httpx.AsyncClient(transport=transport, timeout=self.timeout)
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=50, keepalive_expiry=4)
        return HttpxAiohttpClient(timeout=self.timeout, limits=limits)

    async def aclose(self) -> None:
        await self._clients.aclose()

    async def handle(self, request: Request, *, admin: Document, service: str, ip: str) -> Response:
        """Run one proxy call (the admin is already authenticated; ``ip`` is the client)."""
        if service not in PROXY_SERVICES:
            raise NotFound("Service not found")
        method = request.method.upper()
        raw_service, raw_path = split_raw_path(request.scope)
        query = request.scope.get("query_string", b"").decode("latin-1")
        started = time.perf_counter()
        entry_id = None
        if audited_method(method):
            entry_id = await self.admins.open_audit(
                context=AuditContext(
                    admin=admin,
                    method=method,
                    service=service,
                    path="/" + (raw_path or ""),
                    query=query,
                    request_id=request.state.request_id,
                    ip=ip,
                )
            )
        try:
            if raw_service != service or raw_path is None or not proxy_path_is_safe(raw_path):
                raise BadRequest("Invalid proxy path")
            target = self._target(service, raw_path, query)
            if not proxy_allows(admin, service=service, method=method):
                raise InsufficientPermissions()
            return await self._forward(request, service=service, target=target, entry_id=entry_id, started=started)
        except Exception as exc:
            error = exc if isinstance(exc, AppError) else as_app_error(exc)
            if entry_id is not None:
                await self._close(entry_id, error.status_code if error else 500, started)
            if error is None:
                raise
            raise error from None

    def _target(self, service: str, raw_path: str, query: str) -> httpx.URL:
        """The target URL; its scheme, host and port must be the configured base URL's."""
        base = httpx.URL(self.base_url(service))
        try:
            target = httpx.URL(f"{str(base).rstrip('/')}/{raw_path}" + (f"?{query}" if query else ""))
        except httpx.InvalidURL:
            raise BadRequest("Invalid proxy path") from None
        if (target.scheme, target.host, target.port) != (base.scheme, base.host, base.port):
            raise BadRequest("Invalid proxy path")
        return target

    async def _close(self, entry_id: str, status: int, started: float) -> None:
        await self.admins.close_audit(
            entry_id=entry_id, status=status, duration_ms=round((time.perf_counter() - started) * 1000)
        )

    async def _forward(
        self, request: Request, *, service: str, target: httpx.URL, entry_id: str | None, started: float
    ) -> Response:
        headers, body = self._request_parts(request)
        client = self._clients.get(service)
        upstream_request = client.build_request(request.method, target, headers=headers, content=body)
        try:
            upstream = await client.send(upstream_request, stream=True)
        except Exception as exc:
            if body is not None and body.too_large:
                raise PayloadTooLarge("Request body too large") from None
            raise _failure(service, exc) from exc

        status = upstream.status_code
        answer_headers = [
            (name.lower(), value)
            for name, value in upstream.headers.raw
            if name.lower().decode("latin-1") not in DROPPED_ANSWER
        ]
        named = {
            token.strip().lower() for value in upstream.headers.get_list("connection") for token in value.split(",")
        }
        if named:
            answer_headers = [(n, v) for n, v in answer_headers if n.decode("latin-1") not in named]
        no_body = request.method.upper() == "HEAD" or status in NO_BODY_STATUSES

        async def relay() -> AsyncIterator[bytes]:
            final = status
            try:
                if not no_body:
                    async for chunk in upstream.aiter_raw():
                        yield chunk
            except Exception as exc:
                final = 502
                log.warning("%s answer broke off: %r", service, exc)
                raise
            finally:
                await upstream.aclose()
                if entry_id is not None:
                    await self._close(entry_id, final, started)

        response = StreamingResponse(relay(), status_code=status)
        response.raw_headers = answer_headers
        return response

    def _request_parts(self, request: Request) -> tuple[list[tuple[str, str]], _LimitedBody | None]:
        """The headers to send and the body stream (None without a body)."""
        out, length, chunked, is_json = _forwarded_headers(request.headers.raw)
        out.append((SERVICE_KEY_HEADER, self.settings.outgoing_service_key))
        out.append(("X-Request-ID", request.state.request_id))
        limit = self.settings.MAX_JSON_BODY_BYTES if is_json else None
        if limit is not None and length is not None and length > limit:
            raise PayloadTooLarge("Request body too large")
        if not chunked and not length:
            return out, None
        return out, _LimitedBody(request.stream(), limit)


def _connection_tokens(raw: list[tuple[bytes, bytes]]) -> set[str]:
    """Header names the client's ``Connection`` header marks hop-by-hop."""
    return {
        token.strip().lower()
        for name, value in raw
        if name.lower() == b"connection"
        for token in value.decode("latin-1").split(",")
    }


def _forwarded_headers(raw: list[tuple[bytes, bytes]]) -> tuple[list[tuple[str, str]], int | None, bool, bool]:
    """The client's headers less hop-by-hop and credentials, with what they say of the body:
    (headers, Content-Length, chunked, JSON)."""
    named = _connection_tokens(raw)
    out: list[tuple[str, str]] = []
    length: int | None = None
    chunked = is_json = False
    for name_b, value_b in raw:
        name = name_b.decode("latin-1").lower()
        value = value_b.decode("latin-1")
        chunked = chunked or name == "transfer-encoding"
        if name in DROPPED_REQUEST or name in named:
            continue
        if name == "content-length":
            try:
                length = int(value)
            except ValueError:
                raise BadRequest("Invalid Content-Length") from None
        elif name == "content-type":
            ctype = value.split(";", 1)[0].strip().lower()
            is_json = ctype == "application/json" or ctype.endswith("+json")
        out.append((name, value))
    return out, length, chunked, is_json


class _LimitedBody:
    """The client's body, streamed on as it arrives; a JSON body passing ``limit`` stops the
    upload (``too_large`` tells why the send failed)."""

    def __init__(self, stream: AsyncIterator[bytes], limit: int | None) -> None:
        self.stream = stream
        self.limit = limit
        self.too_large = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        seen = 0
        async for chunk in self.stream:
            seen += len(chunk)
            if self.limit is not None and seen > self.limit:
                self.too_large = True
                raise _BodyTooLarge
            if chunk:
                yield chunk


def _failure(service: str, exc: Exception) -> AppError:
    """503 refused or DNS failure, 504 timed out, 502 anything else."""
    if isinstance(exc, httpx.TimeoutException):
        if isinstance(exc, httpx.ConnectTimeout) and "timeout" not in str(exc).lower():
            # aiohttp reports a refused connection as a ConnectTimeout without "timeout".
            return _unavailable(service)
        return GatewayTimeout(f"Proxy error: {service} service timed out", service=service)
    if isinstance(exc, httpx.ConnectError):
        return _unavailable(service)
    log.warning("proxy call to %s failed: %r", service, exc)
    return BadGateway(f"Proxy error: invalid response from {service} service", service=service)


def _unavailable(service: str) -> ServiceUnavailable:
    return ServiceUnavailable(f"Proxy error: {service} service unavailable", service=service)
