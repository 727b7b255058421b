"""The proxy: ``/api/<service>/<rest>`` → ``<service base>/api/v1/<rest>`` (contract §4.1).

A plain ASGI handler over one pooled keep-alive ``aiohttp.ClientSession`` per service: the
request body is streamed from the client socket to the service, the answer's raw bytes back
(no decompression), each with the header rules of the contract. Failures map to 503 (refused,
open breaker), 504 (any timeout) or 502 (anything else) and feed the service's breaker.

This is the hot path: headers are handled as the bytes uvicorn gives, constants are built
once per service, and no pydantic, Request object or per-request task is involved (a
disconnect watcher is started only for an answer that takes more than one read).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from yarl import URL

from gateway.breaker import CircuitBreaker
from gateway.compress import Gzip, gzip_headers, should_compress
from gateway.forwarding import path_is_safe
from shared.timeutil import now_iso

log = logging.getLogger("gateway.proxy")

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Security headers the gateway sets itself (its value wins), and what else it owns on an answer.
GATEWAY_ANSWER_HEADERS = frozenset(
    {
        b"x-content-type-options",
        b"x-frame-options",
        b"referrer-policy",
        b"x-dns-prefetch-control",
        b"x-download-options",
        b"x-permitted-cross-domain-policies",
        b"x-xss-protection",
        b"content-security-policy",
        b"strict-transport-security",
        b"x-powered-by",
        b"x-request-id",
        b"x-gateway",
        b"x-service-name",
        b"ratelimit-limit",
        b"ratelimit-remaining",
        b"ratelimit-reset",
        b"date",  # uvicorn writes its own
    }
)
# Request headers the gateway replaces or never forwards (besides hop-by-hop ones).
_REPLACED_REQUEST_HEADERS = frozenset(
    {b"host", b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"x-real-ip", b"x-request-id", b"expect"}
)
# aiohttp must not add headers the client did not send (an ``Accept-Encoding`` the client
# cannot decode, a made-up ``Content-Type``).
SKIP_AUTO_HEADERS = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")

_NO_BODY_STATUSES = frozenset({204, 304})
_JSON_CT = b"application/json"


class ClientGone(Exception):
    """The client disconnected while its body was being forwarded."""


class BodyTooLarge(Exception):
    """A streamed JSON body passed the limit."""


class UpstreamBroke(Exception):
    """The service failed after the answer had started; the client connection must be closed."""


def failure_status(exc: BaseException) -> int:
    """503 refused / DNS, 504 any timeout, 502 anything else."""
    if isinstance(exc, asyncio.TimeoutError):
        return 504
    if isinstance(exc, aiohttp.ClientConnectorError):
        return 503
    return 502


FAILURE_NAMES = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


def json_body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def new_session(*, timeout_ms: int, max_connections: int) -> aiohttp.ClientSession:
    """A pooled keep-alive session: raw bodies (no decompression), no cookie jar (answers to one
    client must never add cookies to another's calls), no redirects followed by callers.

    Idle connections are dropped after 4 s, before uvicorn's 5 s keep-alive closes them on the
    service side, so a request is not sent down a connection the service is closing."""
    seconds = timeout_ms / 1000
    connector = aiohttp.TCPConnector(limit=max_connections, limit_per_host=0, keepalive_timeout=4.0)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None, connect=seconds, sock_connect=seconds, sock_read=seconds),
        auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        skip_auto_headers=SKIP_AUTO_HEADERS,
    )


class Upstream:
    """One routed service: its base URL, session, breaker and the constants of its answers."""

    def __init__(self, name: str, base_url: str, breaker: CircuitBreaker) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.prefix = f"/api/{name}".encode()
        self.target_root = self.base_url + "/api/v1"
        self.location_from = self.target_root.encode()
        self.location_to = self.prefix
        self.breaker = breaker
        self.session: aiohttp.ClientSession | None = None
        self.answer_headers = ((b"x-gateway", b"api-gateway"), (b"x-service-name", name.encode()))
        self.unavailable_message = f"{name} service unavailable"

    def failure_body(self, status: int) -> bytes:
        return json_body(
            {
                "success": False,
                "message": self.unavailable_message,
                "error": FAILURE_NAMES[status],
                "timestamp": now_iso(),
            }
        )


class Exchange:
    """What the edge learned about one request and what it adds to the answer."""

    __slots__ = (
        "client_ip",
        "forwarded_for",
        "forwarded_host",
        "forwarded_proto",
        "gzip_ok",
        "headers",
        "request_id",
        "started",
        "status",
        "target",
    )

    def __init__(self) -> None:
        self.status = 500
        self.target = "gateway"
        self.gzip_ok = False
        self.started = False


async def send_json(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers.append((b"content-type", b"application/json"))
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _stream_body(receive: Any, first: bytes, limit: int | None, seen: int) -> AsyncIterator[bytes]:
    """The rest of the client's body, chunk by chunk as it arrives (``first`` already read)."""
    if first:
        yield first
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientGone
        chunk = message.get("body", b"")
        if limit is not None:
            seen += len(chunk)
            if seen > limit:
                raise BodyTooLarge
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


class Proxy:
    """Forwards one request to one upstream (the edge has done id, CORS, limits and routing)."""

    def __init__(self, *, max_json_bytes: int, gzip_min_bytes: int, forward_service_key: bool) -> None:
        self.max_json_bytes = max_json_bytes
        self.gzip_min_bytes = gzip_min_bytes
        self.dropped_request_headers = HOP_BY_HOP | _REPLACED_REQUEST_HEADERS
        if not forward_service_key:
            self.dropped_request_headers |= {b"x-service-key"}

    async def __call__(self, scope: dict, receive: Any, send: Any, up: Upstream, ex: Exchange) -> None:
        ex.target = up.name
        answer = ex.headers
        answer.extend(up.answer_headers)
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        if not path_is_safe(raw_path):
            ex.status = 400
            await send_json(send, 400, b'{"success":false,"message":"Invalid path"}', answer)
            return

        breaker = up.breaker
        wait = breaker.acquire()
        if wait is not None:
            ex.status = 503
            answer.append((b"retry-after", str(max(1, math.ceil(wait))).encode()))
            await send_json(send, 503, up.failure_body(503), answer)
            return

        try:
            await self._forward(scope, receive, send, up, ex, raw_path)
        finally:
            breaker.release()  # ends a half-open trial that neither succeeded nor failed

    async def _forward(self, scope: dict, receive: Any, send: Any, up: Upstream, ex: Exchange, raw_path: bytes) -> None:
        breaker = up.breaker
        answer = ex.headers
        method: str = scope["method"]

        # Request headers: drop hop-by-hop and replaced ones, note the body's framing.
        dropped = self.dropped_request_headers
        out: list[tuple[str, str]] = []
        length = -1
        chunked = False
        is_json = False
        connection_tokens: list[bytes] | None = None
        for name, value in scope["headers"]:
            if name in dropped:
                if name == b"transfer-encoding":
                    chunked = True
                elif name == b"connection":
                    connection_tokens = [t.strip() for t in value.lower().split(b",")]
                continue
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    length = -2
            elif name == b"content-type":
                ctype = value.split(b";", 1)[0].strip().lower()
                is_json = ctype == _JSON_CT or ctype.endswith(b"+json")
            out.append((name.decode("latin-1"), value.decode("latin-1")))
        if connection_tokens:
            named = {t.decode("latin-1") for t in connection_tokens if t}
            out = [(n, v) for n, v in out if n not in named]
        if length == -2:
            ex.status = 400
            await send_json(send, 400, b'{"success":false,"message":"Invalid Content-Length"}', answer)
            return
        limit = self.max_json_bytes if is_json else None
        if limit is not None and length > limit:
            ex.status = 413
            await send_json(send, 413, b'{"success":false,"message":"Request body too large"}', answer)
            return
        out.append(("X-Forwarded-For", ex.forwarded_for))
        out.append(("X-Forwarded-Proto", ex.forwarded_proto))
        if ex.forwarded_host:
            out.append(("X-Forwarded-Host", ex.forwarded_host))
        out.append(("X-Real-IP", ex.client_ip))
        out.append(("X-Request-ID", ex.request_id))

        # Request body: small bodies arrive in one message and go as bytes; anything longer is
        # streamed chunk by chunk (an 11 MB chunked JSON body is cut at the limit).
        data: Any = None
        body_done = True
        if length > 0 or chunked:
            message = await receive()
            if message["type"] != "http.request":
                ex.status = 499
                return
            first = message.get("body", b"")
            if limit is not None and len(first) > limit:
                ex.status = 413
                await send_json(send, 413, b'{"success":false,"message":"Request body too large"}', answer)
                return
            if message.get("more_body", False):
                data = _stream_body(receive, first, limit if chunked else None, len(first))
                body_done = False
            else:
                data = first

        query: bytes = scope.get("query_string", b"")
        target = up.target_root + raw_path[len(up.prefix) :].decode("latin-1")
        if query:
            target += "?" + query.decode("latin-1")
        session = up.session
        assert session is not None
        try:
            response = await session.request(
                method, URL(target, encoded=True), headers=out, data=data, allow_redirects=False
            )
        except BodyTooLarge:
            ex.status = 413
            await send_json(send, 413, b'{"success":false,"message":"Request body too large"}', answer)
            return
        except ClientGone:
            ex.status = 499
            return
        except Exception as exc:
            cause = exc.__cause__
            if isinstance(cause, BodyTooLarge):
                ex.status = 413
                await send_json(send, 413, b'{"success":false,"message":"Request body too large"}', answer)
                return
            if isinstance(cause, ClientGone):
                ex.status = 499
                return
            status = failure_status(exc)
            breaker.failure()
            ex.status = status
            log.warning("%s %s -> %s failed: %s (%s)", method, scope["path"], up.name, status, exc.__class__.__name__)
            await send_json(send, status, up.failure_body(status), answer)
            return
        breaker.success()

        try:
            await self._answer(send, receive, response, up, ex, method, body_done)
        finally:
            response.release()

    async def _answer(
        self,
        send: Any,
        receive: Any,
        response: aiohttp.ClientResponse,
        up: Upstream,
        ex: Exchange,
        method: str,
        body_done: bool,
    ) -> None:
        status = response.status
        ex.status = status
        headers: list[tuple[bytes, bytes]] = []
        hop = HOP_BY_HOP
        owned = GATEWAY_ANSWER_HEADERS
        connection_named: list[bytes] | None = None
        for raw_name, value in response.raw_headers:
            name = raw_name.lower()
            if name in hop:
                if name == b"connection":
                    connection_named = [t.strip() for t in value.lower().split(b",")]
                continue
            if name in owned or name.startswith(b"access-control-"):
                continue
            if name == b"location" and value.startswith(up.location_from):
                value = up.location_to + value[len(up.location_from) :]
            headers.append((name, value))
        if connection_named:
            headers = [(n, v) for n, v in headers if n not in connection_named]

        no_body = method == "HEAD" or status in _NO_BODY_STATUSES
        gz = None
        if ex.gzip_ok and not no_body and should_compress(headers, self.gzip_min_bytes):
            headers = gzip_headers(headers)
            gz = Gzip()
        headers.extend(ex.headers)
        ex.started = True
        await send({"type": "http.response.start", "status": status, "headers": headers})
        if no_body:
            await send({"type": "http.response.body", "body": b""})
            return

        content = response.content
        try:
            chunk = await content.readany()
        except Exception as exc:
            raise UpstreamBroke(f"{up.name} failed while answering: {exc!r}") from exc
        if content.at_eof():
            await send({"type": "http.response.body", "body": gz.chunk(chunk, True) if gz else chunk})
            return

        # A longer answer: stream it, and stop reading from the service if the client leaves.
        watcher = asyncio.ensure_future(_watch_disconnect(receive, response)) if body_done else None
        try:
            while True:
                if gz is not None:
                    chunk = gz.chunk(chunk, False)
                if chunk:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                try:
                    chunk = await content.readany()
                except Exception as exc:
                    if watcher is not None and watcher.done():
                        ex.status = 499
                        return
                    raise UpstreamBroke(f"{up.name} failed while answering: {exc!r}") from exc
                if not chunk and content.at_eof():
                    break
            if watcher is not None and watcher.done():
                ex.status = 499  # the client left; the service's answer was dropped
                return
            await send({"type": "http.response.body", "body": gz.chunk(b"", True) if gz else b""})
        finally:
            if watcher is not None:
                watcher.cancel()


async def _watch_disconnect(receive: Any, response: aiohttp.ClientResponse) -> None:
    """Wait for the client to leave; then close the service's answer (and its connection)."""
    while (await receive())["type"] == "http.request":
        pass
    response.close()
