"""The edge: what every request goes through, as one pure-ASGI layer in front of FastAPI (§5.4).

request id → CORS (a preflight ends here) → security headers → rate limit → route: a proxied
service (:mod:`gateway.proxy`) or the gateway's own FastAPI routes → compression → access log
and metrics. A failure the handlers did not answer becomes the 500 envelope.

It replaces ``shared.app``'s request middleware and Starlette's CORS middleware for the
gateway: those apply the JSON body guard (415) to every body, which proxied uploads must not
meet, and their CORS and log shapes differ from the gateway contract's.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Gauge

from gateway.accesslog import AccessLog
from gateway.compress import Gzip, accepts_gzip, gzip_headers, should_compress
from gateway.forwarding import ClientResolver, normalise_peer
from gateway.ratelimit import GatewayRateLimiter
from shared.app import CSP, GATEWAY_SECURITY_HEADERS, HSTS, HttpMetrics, redact_path
from shared.context import request_id_var
from shared.metrics import RequestTally
from shared.timeutil import now_iso

if TYPE_CHECKING:
    from gateway.proxy import Proxy, Upstream

log = logging.getLogger("gateway")

PREFLIGHT_HEADERS = (
    (b"access-control-allow-methods", b"GET,POST,PUT,DELETE,PATCH,OPTIONS"),
    (b"access-control-allow-headers", b"Content-Type,Authorization,X-Service-Key,X-Requested-With,X-Request-ID"),
)
_ALLOW_CREDENTIALS = (b"access-control-allow-credentials", b"true")
_VARY_ORIGIN = (b"vary", b"Origin")

# Header floods: more headers or more header bytes than this → 431 (Node's default is 16 KB).
MAX_HEADERS = 100
MAX_HEADER_BYTES = 16 * 1024

_RID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
_ORIGIN, _ACRM, _RID_H, _XFF, _XFP, _XFH, _HOST, _AE, _CL, _TE = range(10)
_WANTED = {
    b"origin": _ORIGIN,
    b"access-control-request-method": _ACRM,
    b"x-request-id": _RID_H,
    b"x-forwarded-for": _XFF,
    b"x-forwarded-proto": _XFP,
    b"x-forwarded-host": _XFH,
    b"host": _HOST,
    b"accept-encoding": _AE,
    b"content-length": _CL,
    b"transfer-encoding": _TE,
}
_UNCOMPRESSED_PREFIXES = ("/media/", "/thumb/")
_UNLOGGED = frozenset({"/health", "/metrics"})

_HEADERS_TOO_LARGE = b'{"success":false,"message":"Request header fields too large"}'
# A request framed both ways is how requests are smuggled past a proxy (RFC 9112 §6.1): some
# parsers (uvicorn's h11) accept it, so the edge refuses it itself, whatever parser is in use.
FRAMING_REFUSED = b'{"success":false,"message":"Content-Length and Transfer-Encoding must not be sent together"}'
_CLOSE = (b"connection", b"close")
_TOO_MANY = b'{"success":false,"message":"Too many requests from this IP, please try again later"}'


def new_request_id() -> str:
    """A random UUID4 string for a request that brought no usable id.

    Request ids need to be unique, not secret, so they come from ``random`` rather than
    ``os.urandom``: no system call on a path every such request takes. (The module's own
    generator is reseeded in a forked child, so workers never share a sequence.)"""
    n = random.getrandbits(128) & ~(0xC000 << 48) | (0x8000 << 48)
    n = n & ~(0xF000 << 64) | (0x4000 << 64)
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class GatewayMetrics:
    """The gateway's own metrics, in the registry of the common ones (``shared.app``)."""

    def __init__(self, common: HttpMetrics, services: Sequence[str]) -> None:
        registry = common.registry
        self.common = common
        self.proxy = RequestTally(
            registry,
            counter=("gateway_proxy_requests_total", "Proxied requests", ("service", "status")),
            histogram=("gateway_proxy_duration_seconds", "Proxied request duration", ("service",)),
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.circuit_state = Gauge(
            "gateway_circuit_state", "0 closed, 1 half-open, 2 open", ["service"], registry=registry
        )
        self.rate_limited = Counter(
            "gateway_rate_limited_total", "Requests refused by the rate limiter", registry=registry
        )
        for name in services:
            self.circuit_state.labels(name).set(0)

    def observe(self, method: str, route: str, status: int, service: str | None, elapsed: float) -> None:
        """Count a request; its duration goes to the proxy histogram when proxied, else the common one."""
        if service is None:
            self.common.observe(method, route, status, elapsed)
            return
        code = str(status)
        self.common.tally.observe((method, route, code), None, elapsed)
        self.proxy.observe((service, code), (service,), elapsed)


class UpstreamBroke(Exception):
    """The service failed after the answer had started; the client connection must be closed."""


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
        "route",
        "service",
        "started",
        "status",
        "target",
    )

    def __init__(self) -> None:
        self.status = 500
        self.target = "gateway"
        self.gzip_ok = False
        self.started = False
        self.route = "unmatched"
        self.service: str | None = None


async def _send_refusal(send: Any, ex: Exchange, body: bytes) -> None:
    if ex.status == 204:  # a preflight: no body, no type
        await send({"type": "http.response.start", "status": ex.status, "headers": ex.headers})
        await send({"type": "http.response.body", "body": b""})
    else:
        await send_json(send, ex.status, body, ex.headers)


async def send_json(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers.append((b"content-type", b"application/json"))
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _scan_headers(headers: list[tuple[bytes, bytes]]) -> tuple[list[bytes | None], int]:
    """The headers the edge reads, by slot, and the total size of all header bytes."""
    seen: list[bytes | None] = [None] * 10
    wanted = _WANTED
    size = 0
    for name, value in headers:
        size += len(name) + len(value)
        slot = wanted.get(name)
        if slot is not None:
            seen[slot] = value
    return seen, size


class Edge:
    """Pure-ASGI app wrapping the gateway's FastAPI stack: proxied requests never enter it."""

    def __init__(
        self,
        app: Any,
        *,
        upstreams: dict[bytes, Upstream],
        proxy: Proxy,
        limiter: GatewayRateLimiter,
        resolver: ClientResolver,
        metrics: GatewayMetrics,
        cors_origins: Sequence[str],
        docs_csp: str,
        json_logs: bool,
    ) -> None:
        self.app = app
        self.upstreams = upstreams
        self.proxy = proxy
        self.limiter = limiter
        self.resolver = resolver
        self.metrics = metrics
        self.any_origin = "*" in cors_origins
        self.origins = frozenset(o.encode() for o in cors_origins)
        self.security = (*GATEWAY_SECURITY_HEADERS, (b"content-security-policy", CSP.encode()))
        self.docs_security = (*GATEWAY_SECURITY_HEADERS, (b"content-security-policy", docs_csp.encode()))
        self.access_log = AccessLog(json_fields=json_logs)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        seen, header_bytes = _scan_headers(scope["headers"])
        ex = Exchange()
        token = self._request_id(scope, seen, ex)
        proto = self._client_address(scope, seen, ex)
        path: str = scope["path"]
        ex.headers = self._answer_headers(ex.request_id, path, proto, seen[_ORIGIN])
        ae = seen[_AE]
        ex.gzip_ok = ae is not None and accepts_gzip(ae) and not path.startswith(_UNCOMPRESSED_PREFIXES)
        try:
            # The checks are plain calls; a coroutine only when there is something to send.
            refusal = self._refusal(scope, ex, seen, header_bytes)
            if refusal is not None:
                await _send_refusal(send, ex, refusal)
                return
            limiter = self.limiter
            if limiter.enabled and not (path == "/health" and scope["method"] == "GET"):
                # In memory (the default) the hit is counted without a coroutine; Redis is awaited.
                quota = limiter.check_now(ex.client_ip) or await limiter.check("gateway", ex.client_ip)
                if self._over_limit(quota, ex):
                    await send_json(send, 429, _TOO_MANY, ex.headers)
                    return
            up = self._upstream(scope)
            if up is not None:  # proxied: called from here, one coroutine level less to pay
                ex.service = up.name
                ex.route = up.route
                await self.proxy(scope, receive, send, up, ex)
            else:
                await self._own_route(scope, receive, send, ex)
        except UpstreamBroke as exc:
            # The status line is out; all that is left is to close the connection, which
            # uvicorn does when the app returns before the answer is complete.
            method, rid = scope["method"], ex.request_id
            log.error("%s %s: %s; closing the client connection (rid=%s)", method, redact_path(path), exc, rid)
        except Exception:
            await self._fail(send, ex)
        finally:
            request_id_var.reset(token)
            elapsed = time.perf_counter() - started
            self.metrics.observe(scope["method"], ex.route, ex.status, ex.service, elapsed)
            if path not in _UNLOGGED:
                self.access_log.write(scope["method"], path, ex, elapsed)

    # -- the steps, in order -----------------------------------------------------------------

    @staticmethod
    def _request_id(scope: dict, seen: list[bytes | None], ex: Exchange) -> Any:
        """Keep a well-formed incoming ``X-Request-ID``, else make one; returns the context token."""
        rid = seen[_RID_H]
        request_id = rid.decode() if rid is not None and _RID.fullmatch(rid) else new_request_id()
        ex.request_id = request_id
        scope.setdefault("state", {})["request_id"] = request_id
        return request_id_var.set(request_id)

    def _client_address(self, scope: dict, seen: list[bytes | None], ex: Exchange) -> str:
        """Client IP and the forwarding headers to send on (contract §5.2); returns the
        effective scheme (a trusted proxy's ``X-Forwarded-Proto``, else the socket's)."""
        client = scope.get("client")
        peer = normalise_peer(client[0]) if client else "unknown"
        host = seen[_HOST]
        host_text = host.decode("latin-1") if host is not None else ""
        resolver = self.resolver
        if not (resolver.trusted and resolver.peer_trusted(peer)):
            ex.client_ip = ex.forwarded_for = peer
            ex.forwarded_proto = scope["scheme"]
            ex.forwarded_host = host_text
            return scope["scheme"]
        xff = seen[_XFF]
        ex.client_ip, ex.forwarded_for = resolver.resolve(peer, xff.decode("latin-1") if xff is not None else None)
        xfp = seen[_XFP]
        ex.forwarded_proto = xfp.decode("latin-1") if xfp else scope["scheme"]
        xfh = seen[_XFH]
        ex.forwarded_host = xfh.decode("latin-1") if xfh else host_text
        return ex.forwarded_proto.split(",", 1)[0].strip().lower()

    def _answer_headers(
        self, request_id: str, path: str, proto: str, origin: bytes | None
    ) -> list[tuple[bytes, bytes]]:
        """What every answer carries: request id, security headers (HSTS over HTTPS) and CORS."""
        answer: list[tuple[bytes, bytes]] = [(b"x-request-id", request_id.encode())]
        answer.extend(self.docs_security if path == "/docs" else self.security)
        if proto == "https":
            answer.append(HSTS)
        if self.any_origin:
            answer.append((b"access-control-allow-origin", b"*"))
            answer.append(_ALLOW_CREDENTIALS)
        else:
            answer.append(_VARY_ORIGIN)
            if origin is not None and origin in self.origins:
                answer.append((b"access-control-allow-origin", origin))
                answer.append(_ALLOW_CREDENTIALS)
        return answer

    @staticmethod
    def _refusal(scope: dict, ex: Exchange, seen: list[bytes | None], header_bytes: int) -> bytes | None:
        """What the edge answers itself, if anything: header floods (431), ambiguous framing
        (400, connection closed), CORS preflights (204, no body). The status and headers go on
        ``ex``; the JSON body is returned (empty for a preflight)."""
        answer = ex.headers
        if len(scope["headers"]) > MAX_HEADERS or header_bytes > MAX_HEADER_BYTES:
            ex.status = 431
            return _HEADERS_TOO_LARGE
        if seen[_CL] is not None and seen[_TE] is not None:
            ex.status = 400
            answer.append(_CLOSE)
            return FRAMING_REFUSED
        if scope["method"] == "OPTIONS" and seen[_ORIGIN] is not None and seen[_ACRM] is not None:
            ex.route = "preflight"
            ex.status = 204
            answer.extend(PREFLIGHT_HEADERS)
            return b""
        return None

    def _over_limit(self, quota: Any, ex: Exchange) -> bool:
        """Add the ``RateLimit-*`` headers of the client's ``quota``; True when refused (429).
        ``RATE_LIMIT_MAX=0`` turns limiting off, as it does on every service."""
        answer = ex.headers
        answer.append(self.limiter.limit_header)
        answer.append((b"ratelimit-remaining", str(quota.remaining).encode()))
        reset = str(quota.reset_seconds).encode()
        answer.append((b"ratelimit-reset", reset))
        if quota.allowed:
            return False
        self.metrics.rate_limited.inc()
        ex.status = 429
        answer.append((b"retry-after", reset))
        return True

    def _upstream(self, scope: dict) -> Upstream | None:
        """The service ``/api/<service>/…`` goes to; None for the gateway's own routes."""
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        if not raw_path.startswith(b"/api/"):
            return None
        end = raw_path.find(b"/", 5)
        return self.upstreams.get(raw_path[5:end] if end >= 0 else raw_path[5:])

    async def _own_route(self, scope: dict, receive: Any, send: Any, ex: Exchange) -> None:
        """The gateway's own FastAPI routes, their answers given the edge's headers."""
        await self.app(scope, receive, _OwnAnswer(send, ex, scope["method"], self.proxy.gzip_min_bytes))
        found = scope.get("route")
        ex.route = getattr(found, "path", ex.route)

    @staticmethod
    async def _fail(send: Any, ex: Exchange) -> None:
        """A failure no handler answered: the 500 envelope, unless the answer had started."""
        if ex.started:  # answered already (by the routes' 500 handler), or failed mid-answer
            log.exception("gateway error after the answer started (rid=%s)", ex.request_id)
            return
        log.exception("unhandled gateway error (rid=%s)", ex.request_id)
        ex.status = 500
        body = json.dumps(
            {"success": False, "message": "Internal Gateway Error", "timestamp": now_iso(), "requestId": ex.request_id}
        ).encode()
        await send_json(send, 500, body, ex.headers)


class _OwnAnswer:
    """``send`` for the gateway's own routes: the edge's headers added, JSON/text compressed."""

    __slots__ = ("ex", "gz", "min_bytes", "no_body", "send")

    def __init__(self, send: Any, ex: Exchange, method: str, min_bytes: int) -> None:
        self.send = send
        self.ex = ex
        self.gz: Gzip | None = None
        self.no_body = method == "HEAD"
        self.min_bytes = min_bytes

    async def __call__(self, message: dict) -> None:
        ex = self.ex
        if message["type"] == "http.response.start":
            ex.status = message["status"]
            ex.started = True
            headers = list(message.get("headers", ()))
            if ex.gzip_ok and not self.no_body and should_compress(headers, self.min_bytes):
                headers = gzip_headers(headers)
                self.gz = Gzip()
            headers.extend(ex.headers)
            message = {**message, "headers": headers}
        elif self.gz is not None and message["type"] == "http.response.body":
            more = message.get("more_body", False)
            message = {**message, "body": self.gz.chunk(message.get("body", b""), not more)}
        await self.send(message)
