"""The proxy: ``/api/<service>/<rest>`` → ``<service base>/api/v1/<rest>`` (contract §4.1), and
``/media/{id}``, ``/thumb/{id}`` → media's serve paths (§4.6), over the same steps.

A plain ASGI handler over one pooled keep-alive ``aiohttp.ClientSession`` per service: the
request body is streamed from the client socket to the service, the answer's raw bytes back
(no decompression), each with the header rules of the contract. Failures map to 503 (refused,
open breaker), 504 (any timeout) or 502 (anything else) and feed the service's breaker.

A proxied request goes through named steps: path check → breaker → request headers (and their
framing) → body source → upstream call → answer (headers, then the streamed body). A media
request shares the breaker, upstream-call and answer steps with its own header rules.

This is the hot path: headers are handled as the bytes uvicorn gives, constants are built
once per service, and no pydantic, Request object or per-request task is involved (a
disconnect watcher is started only for an answer that takes more than one read).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp.client_proto import ResponseHandler
from multidict import CIMultiDict
from yarl import URL

from gateway.breaker import CircuitBreaker
from gateway.compress import Gzip, gzip_headers, should_compress
from gateway.edge import FRAMING_REFUSED, Exchange, UpstreamBroke, send_json
from gateway.forwarding import path_is_safe
from gateway.memo import Memo
from shared.app import GATEWAY_SECURITY_HEADERS, HSTS, redact_path
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
        *(name for name, _ in GATEWAY_SECURITY_HEADERS),
        b"content-security-policy",
        HSTS[0],
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
# Request headers the gateway replaces or never forwards (besides hop-by-hop ones); it writes
# ``Content-Length`` itself, once, after checking it (see :meth:`Proxy._request_head`).
_REPLACED_REQUEST_HEADERS = frozenset(
    {
        b"host",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"x-real-ip",
        b"x-request-id",
        b"expect",
        b"content-length",
    }
)
# aiohttp must not add headers the client did not send (an ``Accept-Encoding`` the client
# cannot decode, a made-up ``Content-Type``).
SKIP_AUTO_HEADERS = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")

_NO_BODY_STATUSES = frozenset({204, 304})
_JSON_CT = b"application/json"

_TOO_LARGE = b'{"success":false,"message":"Request body too large"}'
_BAD_LENGTH = b'{"success":false,"message":"Invalid Content-Length"}'
_BAD_PATH = b'{"success":false,"message":"Invalid path"}'

# ``/media/{id}`` and ``/thumb/{id}``: what passes either way (caching and ranges).
_MEDIA_REQUEST_HEADERS = {
    b"range": "Range",
    b"if-range": "If-Range",
    b"if-none-match": "If-None-Match",
    b"if-modified-since": "If-Modified-Since",
}
_MEDIA_ANSWER_HEADERS = frozenset(
    {
        b"content-type",
        b"content-length",
        b"content-range",
        b"accept-ranges",
        b"etag",
        b"last-modified",
        b"content-disposition",
    }
)
_MEDIA_ADDED_HEADERS = (
    (b"cache-control", b"public, max-age=86400"),
    (b"cross-origin-resource-policy", b"cross-origin"),
    (b"x-service-name", b"media"),
)


# What becomes of a service's answer header, by its name as sent: (lower-case name, rule).
# Answers repeat the same few names, so each is looked at once (a bounded cache) rather than
# lowered and tested against three sets on every answer.
_PASS, _DROP, _CONNECTION, _LOCATION = "pass", "drop", "connection", "location"
_answer_rules: Memo[bytes, tuple[bytes, str]] = Memo(1024)


def _answer_rule(raw_name: bytes) -> tuple[bytes, str]:
    name = raw_name.lower()
    if name == b"connection":
        rule = _CONNECTION
    elif name in HOP_BY_HOP or name in GATEWAY_ANSWER_HEADERS or name.startswith(b"access-control-"):
        rule = _DROP
    elif name == b"location":
        rule = _LOCATION
    else:
        rule = _PASS
    return _answer_rules.keep(raw_name, (name, rule))


_connection_values: Memo[bytes, frozenset[bytes]] = Memo(256)


def _named_by_connection(value: bytes) -> frozenset[bytes]:
    """The headers a ``Connection`` value names for removal, besides the hop-by-hop ones
    (dropped anyway): none for the usual ``keep-alive`` or ``close``."""
    named = _connection_values.get(value)
    if named is None:
        named = _connection_values.keep(value, frozenset(t.strip() for t in value.lower().split(b",")) - HOP_BY_HOP)
    return named


_urls: Memo[str, URL] = Memo(1024)


def _url(target: str) -> URL:
    """``target`` parsed (already encoded: the client's bytes go on as sent), from a bounded
    cache: clients ask for the same few pages again and again."""
    url = _urls.get(target)
    return url if url is not None else _urls.keep(target, URL(target, encoded=True))


class ClientGone(Exception):
    """The client disconnected while its body was being forwarded."""


class Refused(Exception):
    """The gateway answers the request itself (``status``, JSON ``body``) and forwards nothing
    more: a bad path, length or framing, or a body over the limit."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


class UpstreamFailed(Exception):
    """The call to the service failed before an answer (counted on its breaker): 502/503/504."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


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


_SKIPPED_AUTO_HEADERS: CIMultiDict[None] = CIMultiDict((name, None) for name in sorted(SKIP_AUTO_HEADERS))


class ProxyRequest(aiohttp.ClientRequest):
    """aiohttp's request that adds none of its automatic headers (``SKIP_AUTO_HEADERS`` are
    all of them): the session's skip list says the same, but aiohttp turns it into two new
    multidicts on every request to find that out (about 2 µs of the gateway's time)."""

    def update_auto_headers(self, skip_auto_headers: Any) -> None:
        self._skip_auto_headers = _SKIPPED_AUTO_HEADERS  # read, never changed, by aiohttp


class DeadlineReadTimeout(ResponseHandler):
    """aiohttp's response handler with its read timeout kept as a deadline.

    aiohttp makes a timer when a request is sent, cancels it and makes another whenever bytes
    arrive, and cancels that at the answer's end: two timers made and dropped per proxied
    request (about 1.3 µs each with uvloop). Here the deadline moves instead, and one timer
    per connection, when it fires, raises the read timeout if the deadline has passed or
    waits for it. The same gap between bytes times out, at the same moment."""

    _read_deadline: float | None = None

    def _reschedule_timeout(self) -> None:
        timeout = self._read_timeout
        if not timeout:
            self._read_deadline = None
            return
        self._read_deadline = deadline = self._loop.time() + timeout
        if self._read_timeout_handle is None:
            self._read_timeout_handle = self._loop.call_at(deadline, self._read_deadline_due)

    def _drop_timeout(self) -> None:
        self._read_deadline = None  # an armed timer finds nothing to do when it fires

    def _read_deadline_due(self) -> None:
        self._read_timeout_handle = None
        deadline = self._read_deadline
        if deadline is None:
            return
        if deadline > self._loop.time():
            self._read_timeout_handle = self._loop.call_at(deadline, self._read_deadline_due)
            return
        self._read_deadline = None
        self._on_read_timeout()

    def connection_lost(self, exc: BaseException | None) -> None:
        handle = self._read_timeout_handle
        if handle is not None:
            handle.cancel()
            self._read_timeout_handle = None
        super().connection_lost(exc)


class ProxyConnector(aiohttp.TCPConnector):
    """aiohttp's TCP connector whose connections use :class:`DeadlineReadTimeout`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._factory = functools.partial(DeadlineReadTimeout, loop=self._loop)


def new_session(*, timeout_ms: int, max_connections: int) -> aiohttp.ClientSession:
    """A pooled keep-alive session: raw bodies (no decompression), no cookie jar (answers to one
    client must never add cookies to another's calls), no redirects followed by callers.

    Idle connections are dropped after 4 s, before uvicorn's 5 s keep-alive closes them on the
    service side, so a request is not sent down a connection the service is closing."""
    seconds = timeout_ms / 1000
    connector = ProxyConnector(limit=max_connections, limit_per_host=0, keepalive_timeout=4.0)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None, connect=seconds, sock_connect=seconds, sock_read=seconds),
        auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        skip_auto_headers=SKIP_AUTO_HEADERS,
        request_class=ProxyRequest,
    )


class Upstream:
    """One routed service: its base URL, session, breaker and the constants of its answers."""

    def __init__(self, name: str, base_url: str, breaker: CircuitBreaker) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.prefix = f"/api/{name}".encode()
        self.route = f"/api/{name}"  # the metrics' route label
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


class RequestHead:
    """The request headers to forward and what they say about the body."""

    __slots__ = ("chunked", "headers", "length", "limit")

    def __init__(self, headers: list[tuple[str, str]], length: int, chunked: bool, limit: int | None) -> None:
        self.headers = headers
        self.length = length  # -1: no Content-Length
        self.chunked = chunked
        self.limit = limit  # the JSON cap, None for other bodies


def _retry_after(wait: float) -> tuple[bytes, bytes]:
    return (b"retry-after", str(max(1, math.ceil(wait))).encode())


async def _stream_body(receive: Any, first: bytes, limit: int | None, expected: int, seen: int) -> AsyncIterator[bytes]:
    """The rest of the client's body, chunk by chunk as it arrives (``first`` already read).

    ``limit`` cuts a chunked JSON body; ``expected`` (a ``Content-Length``, or -1) is checked
    against the bytes really sent: more, or fewer by the end, aborts the forwarded request
    (its connection is closed, never reused), so the service never reads a body framed by a
    length that differs from what went on the wire."""
    if first:
        yield first
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientGone
        chunk = message.get("body", b"")
        seen += len(chunk)
        if limit is not None and seen > limit:
            raise Refused(413, _TOO_LARGE)
        more = message.get("more_body", False)
        if expected >= 0 and (seen > expected or (not more and seen != expected)):
            raise Refused(400, _BAD_LENGTH)
        if chunk:
            yield chunk
        if not more:
            return


async def _watch_disconnect(receive: Any, response: aiohttp.ClientResponse) -> None:
    """Wait for the client to leave; then close the service's answer (and its connection)."""
    while (await receive())["type"] == "http.request":
        pass
    response.close()


class Proxy:
    """Forwards one request to one upstream (the edge has done id, CORS, limits and routing)."""

    def __init__(self, *, max_json_bytes: int, gzip_min_bytes: int, forward_service_key: bool) -> None:
        self.max_json_bytes = max_json_bytes
        self.gzip_min_bytes = gzip_min_bytes
        self.dropped_request_headers = HOP_BY_HOP | _REPLACED_REQUEST_HEADERS
        if not forward_service_key:
            self.dropped_request_headers |= {b"x-service-key"}

    # -- /api/<service>/… ------------------------------------------------------------------

    async def __call__(self, scope: dict, receive: Any, send: Any, up: Upstream, ex: Exchange) -> None:
        ex.target = up.name
        answer = ex.headers
        answer.extend(up.answer_headers)
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        if not path_is_safe(raw_path):
            ex.status = 400
            await send_json(send, 400, _BAD_PATH, answer)
            return

        breaker = up.breaker
        wait = breaker.acquire()
        if wait is not None:
            ex.status = 503
            answer.append(_retry_after(wait))
            await send_json(send, 503, up.failure_body(503), answer)
            return

        try:
            # The forwarding steps, inline: this is the hot path, and every coroutine level
            # is paid again each time the request waits.
            head = self._request_head(scope["headers"], ex)
            if head.length <= 0 and not head.chunked:
                data, body_done = None, True  # nothing to read: no coroutine for it
            else:
                data, body_done = await self._body_source(receive, head)
            target = up.target_root + raw_path[len(up.prefix) :].decode("latin-1")
            query: bytes = scope.get("query_string", b"")
            if query:
                target += "?" + query.decode("latin-1")
            method: str = scope["method"]
            response = await self._call(up, method, _url(target), head.headers, data, scope["path"])
            try:
                headers = self._answer_headers(response, up)
                await self._answer(send, receive, response, headers, ex, method, body_done, up.name)
            finally:
                response.release()
        except Refused as refusal:
            ex.status = refusal.status
            await send_json(send, refusal.status, refusal.body, answer)
        except ClientGone:
            ex.status = 499
        except UpstreamFailed as failed:
            ex.status = failed.status
            await send_json(send, failed.status, up.failure_body(failed.status), answer)
        finally:
            breaker.release()  # ends a half-open trial that neither succeeded nor failed

    def _request_head(self, raw_headers: list[tuple[bytes, bytes]], ex: Exchange) -> RequestHead:
        """The headers to send on: the client's (see :func:`_copy_request_headers`), one checked
        ``Content-Length``, the forwarding headers. Refuses a bad, or repeated and differing,
        ``Content-Length``, one sent with ``Transfer-Encoding``, and a JSON body over the cap."""
        out, lengths, chunked, is_json = _copy_request_headers(raw_headers, self.dropped_request_headers)
        length = _content_length(lengths)
        if chunked and length >= 0:  # the edge refuses these first; never forward both
            raise Refused(400, FRAMING_REFUSED)
        limit = self.max_json_bytes if is_json else None
        if limit is not None and length > limit:
            raise Refused(413, _TOO_LARGE)
        if length >= 0:
            out.append(("Content-Length", str(length)))
        out.append(("X-Forwarded-For", ex.forwarded_for))
        out.append(("X-Forwarded-Proto", ex.forwarded_proto))
        if ex.forwarded_host:
            out.append(("X-Forwarded-Host", ex.forwarded_host))
        out.append(("X-Real-IP", ex.client_ip))
        out.append(("X-Request-ID", ex.request_id))
        return RequestHead(out, length, chunked, limit)

    async def _body_source(self, receive: Any, head: RequestHead) -> tuple[Any, bool]:
        """What aiohttp sends as the body, and whether the client's body is fully read (for a
        request that has one: a length above 0, or chunked).

        Small bodies arrive in one message and go as bytes; anything longer is streamed chunk
        by chunk (an 11 MB chunked JSON body is cut at the limit). Either way the bytes sent
        must match the ``Content-Length`` forwarded."""
        length = head.length
        message = await receive()
        if message["type"] != "http.request":
            raise ClientGone
        first = message.get("body", b"")
        limit = head.limit
        if limit is not None and len(first) > limit:
            raise Refused(413, _TOO_LARGE)
        if message.get("more_body", False):
            if length >= 0 and len(first) > length:
                raise Refused(400, _BAD_LENGTH)
            return _stream_body(receive, first, limit if head.chunked else None, length, len(first)), False
        if length >= 0 and len(first) != length:
            raise Refused(400, _BAD_LENGTH)
        return first, True

    async def _call(
        self,
        up: Upstream,
        method: str,
        url: URL | str,
        headers: list[tuple[str, str]],
        data: Any,
        path: str,
        timeout: aiohttp.ClientTimeout | None = None,
    ) -> aiohttp.ClientResponse:
        """The upstream call: an answer (any status) closes the breaker's count; a transport
        failure counts on it and raises :class:`UpstreamFailed`. A refusal or disconnect met
        while the body was being sent is raised as itself."""
        session = up.session
        assert session is not None
        try:
            response = await session.request(
                method, url, headers=headers, data=data, allow_redirects=False, timeout=timeout or session.timeout
            )
        except (Refused, ClientGone):
            raise
        except Exception as exc:
            cause = exc.__cause__
            if isinstance(cause, Refused | ClientGone):
                raise cause from None
            status = failure_status(exc)
            up.breaker.failure()
            log.warning("%s %s -> %s failed: %s (%s)", method, redact_path(path), up.name, status, type(exc).__name__)
            raise UpstreamFailed(status) from exc
        up.breaker.success()
        return response

    @staticmethod
    def _answer_headers(response: aiohttp.ClientResponse, up: Upstream) -> list[tuple[bytes, bytes]]:
        """The service's answer headers minus hop-by-hop, CORS and the gateway's own ones, with
        a ``Location`` under the service's ``/api/v1`` re-rooted at the public prefix."""
        headers: list[tuple[bytes, bytes]] = []
        rules = _answer_rules
        connection_named: frozenset[bytes] | None = None
        for raw_name, value in response.raw_headers:
            name, rule = rules.get(raw_name) or _answer_rule(raw_name)
            if rule is _PASS:
                headers.append((name, value))
            elif rule is _LOCATION:
                if value.startswith(up.location_from):
                    value = up.location_to + value[len(up.location_from) :]
                headers.append((name, value))
            elif rule is _CONNECTION:
                connection_named = _named_by_connection(value)
        if connection_named:
            headers = [(n, v) for n, v in headers if n not in connection_named]
        return headers

    # -- the answer, for both routes ------------------------------------------------------------

    async def _answer(
        self,
        send: Any,
        receive: Any,
        response: aiohttp.ClientResponse,
        headers: list[tuple[bytes, bytes]],
        ex: Exchange,
        method: str,
        body_done: bool,
        service: str,
    ) -> None:
        """Status line and headers (gzip when the edge allowed it), then the body as it comes."""
        status = response.status
        ex.status = status
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
            raise UpstreamBroke(f"{service} failed while answering: {exc!r}") from exc
        if content.at_eof():
            await send({"type": "http.response.body", "body": gz.chunk(chunk, True) if gz else chunk})
            return
        # A longer answer: stream it, and stop reading from the service if the client leaves.
        watcher = asyncio.ensure_future(_watch_disconnect(receive, response)) if body_done else None
        try:
            await self._stream_answer(send, content, chunk, gz, watcher, ex, service)
        finally:
            if watcher is not None:
                watcher.cancel()

    @staticmethod
    async def _stream_answer(
        send: Any,
        content: aiohttp.StreamReader,
        chunk: bytes,
        gz: Gzip | None,
        watcher: asyncio.Future[None] | None,
        ex: Exchange,
        service: str,
    ) -> None:
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
                raise UpstreamBroke(f"{service} failed while answering: {exc!r}") from exc
            if not chunk and content.at_eof():
                break
        if watcher is not None and watcher.done():
            ex.status = 499  # the client left; the service's answer was dropped
            return
        await send({"type": "http.response.body", "body": gz.chunk(b"", True) if gz else b""})

    # -- /media/{id} and /thumb/{id} -----------------------------------------------------------

    async def media(
        self,
        scope: dict,
        receive: Any,
        send: Any,
        up: Upstream,
        *,
        serve_path: str,
        media_id: str,
        missing: str,
        timeout: aiohttp.ClientTimeout,
    ) -> None:
        """``GET|HEAD {MEDIA}{serve_path}{media_id}`` through the media breaker; only caching and
        range headers pass either way; failures and media's errors carry ``media_id``.

        Called from the gateway's own ``/media`` and ``/thumb`` routes, whose ``send`` already
        adds the edge's headers (request id, security, CORS, rate limit) and counts the status."""
        ex = Exchange()
        ex.headers = []
        ex.request_id = scope["state"]["request_id"]
        breaker = up.breaker
        wait = breaker.acquire()
        if wait is not None:
            await _media_unavailable(send, 503, media_id, [_retry_after(wait)])
            return
        method: str = scope["method"]
        headers = [
            (wanted, value.decode("latin-1"))
            for name, value in scope["headers"]
            if (wanted := _MEDIA_REQUEST_HEADERS.get(name)) is not None
        ]
        headers.append(("X-Request-ID", ex.request_id))
        url = up.base_url + serve_path + media_id
        try:
            response = await self._call(up, method, url, headers, None, scope["path"], timeout)
        except UpstreamFailed as failed:
            await _media_unavailable(send, failed.status, media_id, [])
            return
        finally:
            breaker.release()
        try:
            if response.status >= 400:
                await _media_error(send, response, media_id, missing)
                return
            out = [(name, value) for name, value in _lower(response) if name in _MEDIA_ANSWER_HEADERS]
            out.extend(_MEDIA_ADDED_HEADERS)
            await self._answer(send, receive, response, out, ex, method, True, up.name)
        finally:
            response.release()


async def _media_unavailable(send: Any, status: int, media_id: str, extra: list[tuple[bytes, bytes]]) -> None:
    body = json_body({"success": False, "message": "Media service unavailable", "media_id": media_id})
    await send_json(send, status, body, [(b"x-service-name", b"media"), *extra])


async def _media_error(send: Any, response: aiohttp.ClientResponse, media_id: str, missing: str) -> None:
    """Media's error status and envelope, with ``media_id`` (416 keeps its ``Content-Range``)."""
    try:
        body = await response.read()
    except Exception:
        body = b""
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    envelope: dict[str, Any] = dict(parsed) if isinstance(parsed, dict) else {"success": False}
    envelope.setdefault("success", False)
    if not isinstance(envelope.get("message"), str):
        envelope["message"] = missing
    envelope["media_id"] = media_id
    headers = [(b"x-service-name", b"media")]
    content_range = response.headers.get("Content-Range")
    if content_range is not None:
        headers.append((b"content-range", content_range.encode("latin-1")))
    data = json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()
    await send_json(send, response.status, data, headers)


def _copy_request_headers(
    raw_headers: list[tuple[bytes, bytes]], dropped: frozenset[bytes]
) -> tuple[list[tuple[str, str]], set[bytes], bool, bool]:
    """The client's headers minus ``dropped`` (hop-by-hop, replaced) and any it named in
    ``Connection``; with the ``Content-Length`` values seen, whether it sent
    ``Transfer-Encoding``, and whether the body is JSON."""
    out: list[tuple[str, str]] = []
    lengths: set[bytes] = set()
    chunked = False
    is_json = False
    connection_tokens: list[bytes] | None = None
    for name, value in raw_headers:
        if name in dropped:
            if name == b"content-length":
                lengths.add(value.strip())
            elif name == b"transfer-encoding":
                chunked = True
            elif name == b"connection":
                connection_tokens = [t.strip() for t in value.lower().split(b",")]
            continue
        if name == b"content-type":
            ctype = value.split(b";", 1)[0].strip().lower()
            is_json = ctype == _JSON_CT or ctype.endswith(b"+json")
        out.append((name.decode("latin-1"), value.decode("latin-1")))
    if connection_tokens:
        named = {t.decode("latin-1") for t in connection_tokens if t}
        out = [(n, v) for n, v in out if n not in named]
    return out, lengths, chunked, is_json


def _content_length(values: set[bytes]) -> int:
    """The one ``Content-Length`` of a request (-1 when absent); a bad value, or several that
    differ, refuses it (RFC 9112 §6.3: an invalid length is an unrecoverable framing error)."""
    if not values:
        return -1
    if len(values) > 1:
        raise Refused(400, _BAD_LENGTH)
    text = next(iter(values))
    if not text.isdigit():
        raise Refused(400, _BAD_LENGTH)
    return int(text)


def _lower(response: aiohttp.ClientResponse) -> list[tuple[bytes, bytes]]:
    return [(name.lower(), value) for name, value in response.raw_headers]
