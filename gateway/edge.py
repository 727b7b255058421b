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
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from gateway.compress import Gzip, accepts_gzip, gzip_headers, should_compress
from gateway.forwarding import ClientResolver, normalise_peer
from gateway.proxy import Exchange, Proxy, Upstream, UpstreamBroke, send_json
from gateway.ratelimit import GatewayRateLimiter
from shared.context import request_id_var
from shared.timeutil import now_iso

access_log = logging.getLogger("gateway.access")
log = logging.getLogger("gateway")

CSP = (
    "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';"
    "frame-ancestors 'none';img-src 'self' data:;object-src 'none';script-src 'self';"
    "script-src-attr 'none';style-src 'self' https: 'unsafe-inline'"
)
_SECURITY_BASE: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-dns-prefetch-control", b"off"),
    (b"x-download-options", b"noopen"),
    (b"x-permitted-cross-domain-policies", b"none"),
    (b"x-xss-protection", b"0"),
)
HSTS = (b"strict-transport-security", b"max-age=15552000; includeSubDomains")
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
_ORIGIN, _ACRM, _RID_H, _XFF, _XFP, _XFH, _HOST, _AE = range(8)
_WANTED = {
    b"origin": _ORIGIN,
    b"access-control-request-method": _ACRM,
    b"x-request-id": _RID_H,
    b"x-forwarded-for": _XFF,
    b"x-forwarded-proto": _XFP,
    b"x-forwarded-host": _XFH,
    b"host": _HOST,
    b"accept-encoding": _AE,
}
_UNCOMPRESSED_PREFIXES = ("/media/", "/thumb/")
_UNLOGGED = frozenset({"/health", "/metrics"})
_LINE = "%s %s -> %s %s %dms rid=%s ip=%s"


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

    def __init__(self, common: Any, services: Sequence[str]) -> None:
        registry = common.registry
        self.requests = common.requests
        self.latency = common.latency
        self.proxy_requests = Counter(
            "gateway_proxy_requests_total", "Proxied requests", ["service", "status"], registry=registry
        )
        self.proxy_duration = Histogram(
            "gateway_proxy_duration_seconds",
            "Proxied request duration",
            ["service"],
            registry=registry,
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
        self._children: dict[tuple[str, ...], Any] = {}

    def observe(self, method: str, route: str, status: int, service: str | None, elapsed: float) -> None:
        """Count a request; its duration goes to the proxy histogram when proxied, else the common one."""
        children = self._children
        key = (method, route, status, service)
        found = children.get(key)
        if found is None:
            code = str(status)
            found = (
                self.requests.labels(method, route, code),
                self.proxy_duration.labels(service) if service else self.latency.labels(method, route),
                self.proxy_requests.labels(service, code) if service else None,
            )
            if len(children) < 10_000:
                children[key] = found
        found[0].inc()
        found[1].observe(elapsed)
        if found[2] is not None:
            found[2].inc()


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
        self.security = (*_SECURITY_BASE, (b"content-security-policy", CSP.encode()))
        self.docs_security = (*_SECURITY_BASE, (b"content-security-policy", docs_csp.encode()))
        self.json_logs = json_logs

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        ex = Exchange()

        seen: list[bytes | None] = [None] * 8
        wanted = _WANTED
        header_bytes = 0
        headers = scope["headers"]
        for name, value in headers:
            header_bytes += len(name) + len(value)
            slot = wanted.get(name)
            if slot is not None:
                seen[slot] = value

        rid = seen[_RID_H]
        request_id = rid.decode() if rid is not None and _RID.fullmatch(rid) else new_request_id()
        ex.request_id = request_id
        token = request_id_var.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id

        client = scope.get("client")
        peer = normalise_peer(client[0]) if client else "unknown"
        host = seen[_HOST]
        host_text = host.decode("latin-1") if host is not None else ""
        resolver = self.resolver
        if resolver.trusted and resolver.peer_trusted(peer):
            xff = seen[_XFF]
            ip, chain = resolver.resolve(peer, xff.decode("latin-1") if xff is not None else None)
            xfp = seen[_XFP]
            forwarded_proto = xfp.decode("latin-1") if xfp else scope["scheme"]
            proto = forwarded_proto.split(",", 1)[0].strip().lower()
            xfh = seen[_XFH]
            forwarded_host = xfh.decode("latin-1") if xfh else host_text
        else:
            ip = chain = peer
            proto = forwarded_proto = scope["scheme"]
            forwarded_host = host_text
        ex.client_ip = ip
        ex.forwarded_for = chain
        ex.forwarded_proto = forwarded_proto
        ex.forwarded_host = forwarded_host

        method: str = scope["method"]
        path: str = scope["path"]
        answer: list[tuple[bytes, bytes]] = [(b"x-request-id", request_id.encode())]
        ex.headers = answer
        answer.extend(self.docs_security if path == "/docs" else self.security)
        if proto == "https":
            answer.append(HSTS)
        origin = seen[_ORIGIN]
        if self.any_origin:
            answer.append((b"access-control-allow-origin", b"*"))
            answer.append(_ALLOW_CREDENTIALS)
        else:
            answer.append(_VARY_ORIGIN)
            if origin is not None and origin in self.origins:
                answer.append((b"access-control-allow-origin", origin))
                answer.append(_ALLOW_CREDENTIALS)
        ae = seen[_AE]
        ex.gzip_ok = ae is not None and accepts_gzip(ae) and not path.startswith(_UNCOMPRESSED_PREFIXES)

        route = "unmatched"
        service: str | None = None
        try:
            if len(headers) > MAX_HEADERS or header_bytes > MAX_HEADER_BYTES:
                ex.status = 431
                await send_json(send, 431, b'{"success":false,"message":"Request header fields too large"}', answer)
                return
            if method == "OPTIONS" and origin is not None and seen[_ACRM] is not None:
                route = "preflight"
                ex.status = 204
                answer.extend(PREFLIGHT_HEADERS)
                await send({"type": "http.response.start", "status": 204, "headers": answer})
                await send({"type": "http.response.body", "body": b""})
                return
            # RATE_LIMIT_MAX=0 turns limiting off, as it does on every service.
            if self.limiter.enabled and not (path == "/health" and method == "GET"):
                quota = await self.limiter.check("gateway", ip)
                answer.append((b"ratelimit-limit", str(quota.limit).encode()))
                answer.append((b"ratelimit-remaining", str(quota.remaining).encode()))
                reset = str(quota.reset_seconds).encode()
                answer.append((b"ratelimit-reset", reset))
                if not quota.allowed:
                    self.metrics.rate_limited.inc()
                    ex.status = 429
                    answer.append((b"retry-after", reset))
                    await send_json(
                        send,
                        429,
                        b'{"success":false,"message":"Too many requests from this IP, please try again later"}',
                        answer,
                    )
                    return

            raw_path: bytes = scope.get("raw_path") or path.encode()
            if raw_path.startswith(b"/api/"):
                end = raw_path.find(b"/", 5)
                up = self.upstreams.get(raw_path[5:end] if end >= 0 else raw_path[5:])
                if up is not None:
                    service = up.name
                    route = up.prefix.decode()
                    await self.proxy(scope, receive, send, up, ex)
                    return
            await self.app(scope, receive, _OwnAnswer(send, ex, method, self.proxy.gzip_min_bytes))
            found = scope.get("route")
            route = getattr(found, "path", route)
        except UpstreamBroke as exc:
            # The status line is out; all that is left is to close the connection, which
            # uvicorn does when the app returns before the answer is complete.
            log.error("%s %s: %s; closing the client connection (rid=%s)", method, path, exc, request_id)
        except Exception:
            if ex.started:  # answered already (by the routes' 500 handler), or failed mid-answer
                log.exception("gateway error after the answer started (rid=%s)", request_id)
                return
            log.exception("unhandled gateway error (rid=%s)", request_id)
            ex.status = 500
            body = json.dumps(
                {"success": False, "message": "Internal Gateway Error", "timestamp": now_iso(), "requestId": request_id}
            ).encode()
            await send_json(send, 500, body, answer)
        finally:
            request_id_var.reset(token)
            elapsed = time.perf_counter() - started
            self.metrics.observe(method, route, ex.status, service, elapsed)
            if path not in _UNLOGGED:
                self._log(method, path, ex, elapsed)

    def _log(self, method: str, path: str, ex: Exchange, elapsed: float) -> None:
        """``GET /api/customer/x -> customer 200 12ms rid=<id> ip=<ip>`` (JSON fields with ``LOG_FORMAT=json``).

        Built with ``makeRecord``/``handle`` rather than ``info()``: same handlers and format,
        without the caller lookup, which costs a fifth of a line's price and says nothing here."""
        logger = access_log
        if not logger.isEnabledFor(logging.INFO):
            return
        ms = elapsed * 1000
        fields = None
        if self.json_logs:
            fields = {
                "fields": {
                    "method": method,
                    "path": path,
                    "target": ex.target,
                    "status": ex.status,
                    "durationMs": round(ms, 1),
                    "requestId": ex.request_id,
                    "clientIp": ex.client_ip,
                }
            }
        args = (method, path, ex.target, ex.status, ms, ex.request_id, ex.client_ip)
        logger.handle(logger.makeRecord(logger.name, logging.INFO, __file__, 0, _LINE, args, None, extra=fields))


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
