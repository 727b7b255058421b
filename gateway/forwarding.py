"""Who the client is, what the services are told about it, and which paths may be forwarded.

Client IP (contract §5.2): the socket peer, unless the peer is a trusted proxy; then
``X-Forwarded-For`` is walked from the right, skipping trusted addresses, and the first
untrusted entry is the client (all trusted → the left-most; an entry that is not an IP ends
the walk at the nearest valid address already passed, or the peer). The chain forwarded to
the services is cut just after that entry, so its right-most entry is always the client.

``shared.ratelimit.client_ip`` counts hops from the right of ``X-Forwarded-For`` whoever sent
it, which suits services behind this gateway (the gateway rewrites the header), but the
gateway itself faces the internet and must only believe the proxies it is told to trust.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from urllib.parse import unquote_to_bytes

from gateway.settings import IPNetwork

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def normalise_peer(host: str) -> str:
    """An IPv4-mapped IPv6 peer (``::ffff:1.2.3.4``) as plain IPv4."""
    if host.startswith("::ffff:") and "." in host:
        return host[7:]
    return host


def _parse(text: str) -> Address | None:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


class ClientResolver:
    """Resolves ``(client ip, forwarded chain)`` for a peer and its ``X-Forwarded-For``."""

    def __init__(self, trusted: Sequence[IPNetwork]) -> None:
        self.trusted = tuple(trusted)
        self._peer_cache: dict[str, bool] = {}

    def _is_trusted(self, ip: Address) -> bool:
        return any(ip in net for net in self.trusted)

    def peer_trusted(self, peer: str) -> bool:
        if not self.trusted:
            return False
        known = self._peer_cache.get(peer)
        if known is None:
            ip = _parse(peer)
            known = ip is not None and self._is_trusted(ip)
            if len(self._peer_cache) > 4096:
                self._peer_cache.clear()
            self._peer_cache[peer] = known
        return known

    def resolve(self, peer: str, forwarded_for: str | None) -> tuple[str, str]:
        """Client IP and the ``X-Forwarded-For`` value to send on; the peer must be trusted."""
        if not forwarded_for:
            return peer, peer
        entries = [e.strip() for e in forwarded_for.split(",")]
        passed = peer  # the nearest valid address already passed
        for index in range(len(entries) - 1, -1, -1):
            ip = _parse(entries[index])
            if ip is None:
                return passed, passed
            text = str(ip)
            if not self._is_trusted(ip):
                return text, ", ".join([*entries[:index], text])
            passed = text
        # every entry trusted: the left-most is the client
        client = str(_parse(entries[0]))
        return client, client


_ENCODED_SEPARATOR = re.compile(rb"%(?:2f|5c|00)", re.IGNORECASE)


def path_is_safe(raw_path: bytes) -> bool:
    """False for paths the gateway refuses to forward (contract §4.1 step 2): a segment that is
    ``.`` or ``..`` once percent-decoded, an encoded ``/`` or ``\\`` or NUL, an empty segment
    (``//``), or a backslash."""
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
