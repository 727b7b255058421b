"""The inter-service HTTP client.

One pooled client per target service: httpx's ``AsyncClient`` API over aiohttp's pool
(``httpx-aiohttp``; httpx's own pool collapses under concurrency, see ARCHITECTURE.md).
Every call carries ``X-Service-Key`` and the current ``X-Request-ID`` and has a timeout.
Failures surface as typed errors: refused → :class:`ServiceUnavailable` (503), timed out →
:class:`GatewayTimeout` (504), malformed answer or unexpected 5xx → :class:`BadGateway` (502).

Tests pass ``transports={"media": httpx.ASGITransport(app=media_app)}`` to wire real apps
together in-process.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any, Generic, Protocol, TypeVar

import httpx
from fastapi import Depends, Request
from httpx_aiohttp import HttpxAiohttpClient

from shared.auth import SERVICE_KEY_HEADER
from shared.context import request_id_var
from shared.responses import BadGateway, GatewayTimeout, ServiceUnavailable
from shared.settings import ServiceSettings

DEFAULT_TIMEOUT = 5.0


class Closable(Protocol):
    """Something holding connections to let go of (a client, a pool, a proxy)."""

    def aclose(self) -> Awaitable[None]: ...


C = TypeVar("C", bound=Closable)


class ServiceClient:
    """Calls one target service. Use :meth:`request` for the raw response or
    :meth:`call` for the parsed ``data`` of a 2xx envelope."""

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        service_key: str,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self._service_key = service_key
        self._timeout = timeout
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=50, keepalive_expiry=30)
        client_cls = httpx.AsyncClient if transport is not None else HttpxAiohttpClient
        self._client = client_cls(base_url=self.base_url, timeout=timeout, limits=limits, transport=transport)

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        """Send one request; raise 503/504 errors for refused/timed-out calls.

        Any HTTP status is returned as is; the caller decides what it means.
        """
        sent_headers = {SERVICE_KEY_HEADER: self._service_key}
        request_id = request_id_var.get()
        if request_id:
            sent_headers["X-Request-ID"] = request_id
        if headers:
            sent_headers.update(headers)
        try:
            return await self._client.request(
                method,
                path,
                json=json,
                params=params,
                headers=sent_headers,
                timeout=timeout if timeout is not None else self._timeout,
            )
        except httpx.TimeoutException as exc:
            # aiohttp reports any connection failure as a ConnectTimeout; only a real
            # timeout while waiting for the answer is a 504.
            if isinstance(exc, httpx.ConnectTimeout) and "timeout" not in str(exc).lower():
                raise ServiceUnavailable(f"{self.name} service unavailable", service=self.name) from exc
            raise GatewayTimeout(f"{self.name} service timed out", service=self.name) from exc
        except (httpx.TransportError, OSError) as exc:
            raise ServiceUnavailable(f"{self.name} service unavailable", service=self.name) from exc

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request and return the ``data`` of a 2xx envelope.

        A 5xx or non-JSON answer raises :class:`BadGateway`; a 4xx answer raises
        :class:`UpstreamStatus` carrying the status and body so callers can map it.
        """
        response = await self.request(method, path, **kwargs)
        try:
            body = response.json()
        except ValueError:
            raise BadGateway(f"{self.name} service sent a malformed answer", service=self.name) from None
        if response.status_code >= 500:
            if response.status_code == 503:
                raise ServiceUnavailable(f"{self.name} service unavailable", service=self.name)
            if response.status_code == 504:
                raise GatewayTimeout(f"{self.name} service timed out", service=self.name)
            raise BadGateway(f"{self.name} service failed", service=self.name)
        if response.status_code >= 400:
            raise UpstreamStatus(self.name, response.status_code, body)
        return body.get("data") if isinstance(body, dict) else body

    async def aclose(self) -> None:
        await self._client.aclose()


class UpstreamStatus(Exception):
    """A target answered 4xx; ``status`` and ``body`` say what it said."""

    def __init__(self, service: str, status: int, body: Any) -> None:
        super().__init__(f"{service} answered {status}")
        self.service = service
        self.status = status
        self.body = body

    @property
    def message(self) -> str:
        if isinstance(self.body, dict) and isinstance(self.body.get("message"), str):
            return self.body["message"]
        return f"{self.service} answered {self.status}"


class ClientPool(Generic[C]):
    """One client per target service, made by ``make(service)`` on first use."""

    def __init__(self, make: Callable[[str], C]) -> None:
        self._make = make
        self._clients: dict[str, C] = {}

    def get(self, service: str) -> C:
        """The client of ``service``, made on the first call."""
        client = self._clients.get(service)
        if client is None:
            client = self._clients[service] = self._make(service)
        return client

    async def aclose(self) -> None:
        """Close every client made so far (the pool may be used again afterwards)."""
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()


class ServiceClients(ClientPool[ServiceClient]):
    """The set of clients a service uses, one per target, created on first use."""

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__(self._new_client)
        self._settings = settings
        self._transports = dict(transports or {})
        self._timeout = timeout

    def _new_client(self, service: str) -> ServiceClient:
        transport = self._transports.get(service)
        base_url = "http://" + service if transport is not None else self._settings.service_url(service)
        return ServiceClient(
            service,
            base_url,
            service_key=self._settings.outgoing_service_key,
            timeout=self._timeout,
            transport=transport,
        )


async def _clients(request: Request) -> ServiceClients:
    return request.app.state.clients


ServiceCaller = Annotated[ServiceClients, Depends(_clients)]
"""The app's :class:`ServiceClients`, as a route dependency."""
