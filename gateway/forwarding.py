"""Which paths may be forwarded (contract §4.1 step 2); who the client is lives in
:mod:`shared.forwarding`, the one resolver the gateway and the services share."""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from shared.forwarding import ClientResolver, normalise_peer

__all__ = ["ClientResolver", "normalise_peer", "path_is_safe"]


_ENCODED_SEPARATOR = re.compile(rb"%(?:2f|5c|00)", re.IGNORECASE)


def path_is_safe(raw_path: bytes) -> bool:
    """False for paths the gateway refuses to forward (contract §4.1 step 2): a segment that is
    ``.`` or ``..`` once percent-decoded, an encoded ``/`` or ``\\`` or NUL, an empty segment
    (``//``), or a backslash."""
    return _nothing_to_check(raw_path.decode("latin-1")) or _no_traversal(raw_path)


def _nothing_to_check(text: str) -> bool:
    """None of what :func:`_no_traversal` looks for is there (nearly every path): asked of the
    path's text, as ``in`` on bytes costs ten times its str form (the buffer protocol)."""
    return "%" not in text and "\x00" not in text and "\\" not in text and "//" not in text and "/." not in text


def _no_traversal(raw_path: bytes) -> bool:
    if b"%" in raw_path:
        if _ENCODED_SEPARATOR.search(raw_path):
            return False
        decoded = unquote_to_bytes(raw_path)
    else:
        decoded = raw_path
    if b"\x00" in decoded or b"\\" in decoded or b"//" in decoded:
        return False
    if b"/." in decoded:
        for segment in decoded.split(b"/"):
            if segment in (b".", b".."):
                return False
    return True
