"""Route dependencies of the media service (``Annotated`` aliases), contract section 3.

Credentials go through ``shared.auth`` (``any_of`` / ``optional_caller``) worded by
:data:`MEDIA_AUTH`: a sent key decides alone (present and wrong is 403, an empty one too,
even when a valid bearer comes with it), and a sent ``Authorization`` that is no valid access
token is 401 ``Invalid token``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from media.domain import MediaService
from shared.app import app_state
from shared.auth import AuthRules, Principal, any_of, optional_caller
from shared.fields import PageRequest, page_query
from shared.responses import Unauthorized

KEY_MESSAGE = "Invalid or missing service key"

MEDIA_AUTH = AuthRules(
    key_missing=KEY_MESSAGE, key_invalid=KEY_MESSAGE, wrong_role="Admin access required", strict_headers=True
)


MediaDomain = Annotated[MediaService, Depends(app_state("media"))]

_sent_credentials = optional_caller(rules=MEDIA_AUTH)


async def _optional_uploader(request: Request) -> Principal | None:
    """Upload (``opt``): a sent credential must be valid; none is anonymous unless
    ``MEDIA_ALLOW_ANONYMOUS=false`` (then 401 ``Access token required``)."""
    caller = await _sent_credentials(request)
    if caller is None and not request.app.state.settings.MEDIA_ALLOW_ANONYMOUS:
        raise Unauthorized("Access token required")
    return caller


OptionalUploader = Annotated[Principal | None, Depends(_optional_uploader)]
"""None for an anonymous upload; else the service or the user that sent it."""

ServiceOrAdmin = Annotated[Principal, Depends(any_of(service=True, roles=("admin",), rules=MEDIA_AUTH))]
"""K/A: the service key, else an admin's token (403 ``Admin access required`` for others)."""

ServiceAdminOrUser = Annotated[
    Principal, Depends(any_of(service=True, roles=("customer", "seller", "admin"), rules=MEDIA_AUTH))
]
"""K/A/U: the key or any user's token; whether a user is the uploader is decided on the row."""

ServiceOnly = Annotated[Principal, Depends(any_of(service=True, rules=MEDIA_AUTH))]
"""K: the service key only (401 / 403 ``Invalid or missing service key``)."""

Paging = Annotated[PageRequest, Depends(page_query(default_limit=10, max_limit=100))]
"""``page`` 1..1,000,000 and ``limit`` 1..100 (default 10); out of range is a 400."""
