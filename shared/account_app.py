"""``create_app`` of an account service (customers, sellers): the same wiring of settings,
store, outbox, clients, rate limiter and routes; what differs is passed in."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import httpx
from fastapi import APIRouter, FastAPI

from shared.accounts import EMAIL_KIND, MEDIA_KIND, AccountRepository, AccountService
from shared.app import create_service_app
from shared.clients import ServiceClients
from shared.outbox import Handler, Outbox
from shared.ratelimit import RouteLimits
from shared.settings import ServiceSettings
from shared.store import DocumentStore, open_store


def create_account_app(
    settings: ServiceSettings,
    *,
    service: str,
    database: str,
    routers: Sequence[APIRouter],
    repository: Callable[[DocumentStore], AccountRepository],
    domain: Callable[..., AccountService],
    state_name: str,
    store: DocumentStore | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    handlers: Callable[[AccountService], Mapping[str, Handler]] | None = None,
) -> FastAPI:
    """The app of account service ``service``: its domain is ``app.state.<state_name>``.

    Email and media-mark outbox kinds are registered for every account service;
    ``handlers(domain)`` adds the service's own kinds.
    """
    store = store or open_store(mongodb_uri=settings.MONGODB_URI, data_dir=settings.DATA_DIR, database=database)
    clients = ServiceClients(settings, transports=transports)
    repo = repository(store)
    outbox = Outbox(store, clients, poll_seconds=settings.OUTBOX_POLL_SECONDS)
    accounts = domain(repo=repo, outbox=outbox, settings=settings)
    outbox.register(EMAIL_KIND, lambda row: accounts.build_email(row=row))
    outbox.register(MEDIA_KIND, lambda row: accounts.build_media_mark_used(row=row))
    for kind, handler in (handlers(accounts) if handlers else {}).items():
        outbox.register(kind, handler)

    app = create_service_app(
        settings,
        service=service,
        routers=list(routers),
        store=store,
        parts=[repo, outbox],
        closing=[clients],
    )
    app.state.clients = clients
    app.state.outbox = outbox
    setattr(app.state, state_name, accounts)
    RouteLimits.from_settings(settings, prefix=service).install(app)
    return app
