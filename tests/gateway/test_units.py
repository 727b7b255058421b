"""The gateway's small parts on their own: client IP walk, path check, breaker, gzip
negotiation, fixed windows, request ids."""

from __future__ import annotations

import ipaddress
import re

import pytest

from gateway.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from gateway.compress import accepts_gzip, compressible
from gateway.edge import new_request_id
from gateway.forwarding import ClientResolver, normalise_peer, path_is_safe
from gateway.ratelimit import MemoryWindows


def resolver(*nets: str) -> ClientResolver:
    return ClientResolver([ipaddress.ip_network(n) for n in nets])


@pytest.mark.parametrize(
    ("header", "client", "chain"),
    [
        (None, "127.0.0.1", "127.0.0.1"),
        ("1.1.1.1, 2.2.2.2", "2.2.2.2", "1.1.1.1, 2.2.2.2"),
        ("2.2.2.2, 127.0.0.1", "2.2.2.2", "2.2.2.2"),
        ("127.0.0.2, 127.0.0.3", "127.0.0.2", "127.0.0.2"),  # all trusted: the left-most
        ("9.9.9.9, junk, 127.0.0.5", "127.0.0.5", "127.0.0.5"),  # a non-IP ends the walk
        ("junk", "127.0.0.1", "127.0.0.1"),
        ("::ffff:8.8.8.8", "8.8.8.8", "8.8.8.8"),
        ("2001:db8::1", "2001:db8::1", "2001:db8::1"),
        ("  3.3.3.3  ,4.4.4.4 ", "4.4.4.4", "3.3.3.3, 4.4.4.4"),
    ],
)
def test_client_walk(header, client, chain):
    r = resolver("127.0.0.0/8")
    assert r.peer_trusted("127.0.0.1")
    assert r.resolve("127.0.0.1", header) == (client, chain)


def test_untrusted_peers():
    r = resolver("10.0.0.0/8")
    assert not r.peer_trusted("127.0.0.1")
    assert not r.peer_trusted("not-an-ip")
    assert r.peer_trusted("10.1.2.3")
    assert not resolver().peer_trusted("127.0.0.1")
    assert normalise_peer("::ffff:10.1.2.3") == "10.1.2.3"
    assert normalise_peer("::1") == "::1"


@pytest.mark.parametrize(
    ("path", "safe"),
    [
        (b"/api/customer/x", True),
        (b"/api/customer/", True),
        (b"/api/customer/a.b/..c/c..", True),
        (b"/api/customer/%20x", True),
        (b"/api/customer/../x", False),
        (b"/api/customer/./x", False),
        (b"/api/customer/%2E%2e/x", False),
        (b"/api/customer/a%2Fb", False),
        (b"/api/customer/a%5Cb", False),
        (b"/api/customer/a%00", False),
        (b"/api/customer//x", False),
        (b"/api/customer/a\\b", False),
    ],
)
def test_path_check(path, safe):
    assert path_is_safe(path) is safe


def test_breaker_cycle():
    now = [0.0]
    changes: list[str] = []
    b = CircuitBreaker(threshold=2, cooldown_seconds=10, clock=lambda: now[0], on_change=changes.append)
    assert b.acquire() is None
    b.failure()
    assert b.acquire() is None
    b.success()
    assert b.failures == 0
    b.failure()
    b.failure()
    assert b.state == OPEN
    assert b.acquire() == pytest.approx(10)
    assert b.snapshot() == {"state": "open", "consecutiveFailures": 2, "retryAfterMs": 10000}
    now[0] = 10.5
    assert b.snapshot()["state"] == HALF_OPEN
    assert b.acquire() is None  # the trial
    assert b.acquire() is not None  # concurrent calls refused
    b.release()  # the trial was cancelled: another may try
    assert b.acquire() is None
    b.failure()
    assert b.state == OPEN and b.opened_at == 10.5
    now[0] = 21
    assert b.acquire() is None
    b.success()
    assert b.state == CLOSED
    assert changes == [OPEN, HALF_OPEN, OPEN, HALF_OPEN, CLOSED]


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (b"gzip", True),
        (b"gzip, deflate, br", True),
        (b"br;q=1.0, gzip;q=0.5", True),
        (b"gzip;q=0", False),
        (b"identity", False),
        (b"*", True),
        (b"*;q=0", False),
        (b"deflate, *;q=0.1", True),
        (b"gzip;q=bad", False),
        (b"", False),
    ],
)
def test_accepts_gzip(value, ok):
    assert accepts_gzip(value) is ok


def test_compressible_types():
    assert compressible(b"application/json; charset=utf-8")
    assert compressible(b"application/vnd.api+json")
    assert compressible(b"text/html")
    assert compressible(b"application/javascript")
    assert compressible(b"application/xml")
    assert not compressible(b"image/png")
    assert not compressible(b"application/octet-stream")


def test_memory_windows():
    w = MemoryWindows(10)
    assert w.hit("a", 0) == (1, 10)
    assert w.hit("a", 5) == (2, 10)
    assert w.hit("b", 5) == (1, 15)
    assert w.hit("a", 10) == (1, 20)  # the window ended
    for i in range(3000):
        w.hit(f"c{i}", 100)
    assert len(w._windows) <= 4000


def test_request_ids_are_uuid4():
    ids = {new_request_id() for _ in range(1000)}
    assert len(ids) == 1000
    pattern = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
    assert all(pattern.match(i) for i in ids)
