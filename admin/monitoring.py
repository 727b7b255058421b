"""Dashboard figures and service health (contract §4.5, §4.6, §6).

The four stats calls run concurrently, each bounded by ``STATS_TIMEOUT_MS``; a block whose
service fails (refused, timed out, non-2xx, invalid JSON, ``success: false``) reads as zeros
with ``error`` and the others are untouched. The seven health checks run concurrently too,
each with its measured wall time. Nothing is written.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import httpx

from shared.clients import ServiceClient
from shared.responses import GatewayTimeout, ServiceUnavailable, UpstreamError
from shared.timeutil import now_iso

UNAVAILABLE: Final = "Service unavailable"
HEALTH_ORDER: Final = ("customer", "sellers", "media", "products", "orders", "notifications", "gateway")

ClientFor = Callable[[str], ServiceClient]


class BlockFailed(Exception):
    """A stats call did not give usable figures."""


def _number(value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return value


def _figures(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, dict) or body.get("success") is False:
        raise BlockFailed("unsuccessful answer")
    data = body.get("data")
    if isinstance(data, dict) and isinstance(data.get("stats"), dict):
        data = data["stats"]
    if not isinstance(data, dict):
        raise BlockFailed("no figures")
    return data


def _counts(data: Mapping[str, Any], *names: str) -> dict[str, int | float]:
    return {name: _number(data.get(name)) for name in names}


def _orders_block(data: Mapping[str, Any]) -> dict[str, Any]:
    revenue = data.get("revenue", data.get("totalRevenue"))
    by_status = data.get("byStatus")
    return {
        "total": _number(data.get("total")),
        "revenue": _number(revenue),
        "byStatus": (
            {str(k): _number(v) for k, v in by_status.items() if isinstance(k, str)}
            if isinstance(by_status, dict)
            else {}
        ),
    }


@dataclass(frozen=True, slots=True)
class StatsBlock:
    name: str
    service: str
    path: str
    read: Callable[[Mapping[str, Any]], dict[str, Any]]
    failed: Callable[[], dict[str, Any]]


BLOCKS: Final = (
    StatsBlock(
        "customers",
        "customer",
        "/api/v1/customers/service/stats",
        lambda d: _counts(d, "total", "active", "verified"),
        lambda: {"total": 0, "active": 0, "verified": 0},
    ),
    StatsBlock(
        "sellers",
        "sellers",
        "/api/v1/sellers/service/stats",
        lambda d: _counts(d, "total", "active", "verified"),
        lambda: {"total": 0, "active": 0, "verified": 0},
    ),
    StatsBlock(
        "products",
        "products",
        "/api/v1/service/products/stats",
        lambda d: _counts(d, "total", "active", "outOfStock", "lowStock"),
        lambda: {"total": 0, "active": 0, "outOfStock": 0, "lowStock": 0},
    ),
    StatsBlock(
        "orders",
        "orders",
        "/api/v1/service/orders/stats",
        _orders_block,
        lambda: {"total": 0, "revenue": 0, "byStatus": {}},
    ),
)


async def _block(block: StatsBlock, client: ServiceClient, timeout: float) -> dict[str, Any]:
    try:
        async with asyncio.timeout(timeout):
            response = await client.request("GET", block.path, timeout=timeout)
        if not 200 <= response.status_code < 300:
            raise BlockFailed(f"HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise BlockFailed("invalid JSON") from None
        return block.read(_figures(body))
    except (BlockFailed, UpstreamError, TimeoutError, httpx.HTTPError, OSError):
        return {**block.failed(), "error": UNAVAILABLE}


async def dashboard(*, client_for: ClientFor, timeout_ms: int) -> dict[str, Any]:
    """``{overview: {customers, sellers, products, orders}, lastUpdated}``; never raises for
    another service's failure."""
    timeout = timeout_ms / 1000
    results = await asyncio.gather(*(_block(b, client_for(b.service), timeout) for b in BLOCKS))
    return {"overview": {b.name: r for b, r in zip(BLOCKS, results, strict=True)}, "lastUpdated": now_iso()}


def _failure_text(exc: BaseException, timeout_ms: int) -> str:
    if isinstance(exc, TimeoutError | GatewayTimeout):
        return f"Timeout after {timeout_ms}ms"
    if isinstance(exc, ServiceUnavailable):
        cause = exc.__cause__
        text = str(cause) if cause is not None else ""
        if cause is None or isinstance(cause, httpx.ConnectError | httpx.ConnectTimeout) or "refused" in text.lower():
            return "Connection refused"
        return text[:200] or "Connection refused"
    text = str(exc).strip()
    return (text or exc.__class__.__name__)[:200]


async def _health(client: ServiceClient, url: str, timeout_ms: int) -> dict[str, Any]:
    timeout = timeout_ms / 1000
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            response = await client.request("GET", "/health", timeout=timeout)
            elapsed = round((time.perf_counter() - started) * 1000)
            if not 200 <= response.status_code < 300:
                return {"status": "unhealthy", "error": f"HTTP {response.status_code}", "url": url}
            try:
                answer = response.json()
            except ValueError:
                answer = None
    except Exception as exc:
        return {"status": "unhealthy", "error": _failure_text(exc, timeout_ms), "url": url}
    return {"status": "healthy", "response": answer, "responseTime": f"{elapsed}ms"}


async def services_health(*, targets: Mapping[str, tuple[ServiceClient, str]], timeout_ms: int) -> dict[str, Any]:
    """Health of each target (name → (client, configured URL)) in the contract's key order."""
    names = [n for n in HEALTH_ORDER if n in targets]
    checks: list[Awaitable[dict[str, Any]]] = [_health(*targets[n], timeout_ms) for n in names]
    results = await asyncio.gather(*checks)
    return {"services": dict(zip(names, results, strict=True)), "timestamp": now_iso()}
