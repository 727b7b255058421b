"""Who the client is: the one client-IP resolver of the gateway and every service.

The socket peer is the client, unless the peer is a trusted proxy (``TRUSTED_PROXIES``: IPs or
CIDRs; the gateway trusts none by default, a service the loopback range, where the gateway
runs). From a trusted peer ``X-Forwarded-For`` is walked from the right, skipping trusted
addresses, and the first untrusted entry is the client (all trusted → the left-most; an entry
that is not an IP ends the walk at the nearest valid address already passed, or the peer).
The chain the gateway forwards is cut just after that entry, so its right-most entry is always
the client (gateway contract §5.2).

A header sent by a peer that is not trusted is never read: rotating ``X-Forwarded-For`` from
the internet does not change who the client is, on the gateway or on a service's port.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

LOOPBACK = "127.0.0.0/8,::1"


def parse_networks(text: str) -> tuple[IPNetwork, ...]:
    """A comma-separated list of IPs/CIDRs (``TRUSTED_PROXIES``) as networks."""
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in text.split(",") if item.strip())


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

    def __init__(self, trusted: Iterable[IPNetwork]) -> None:
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

    def client_ip(self, peer: str | None, forwarded_for: str | None) -> str:
        """The client address for a socket ``peer`` (None when unknown) and its header."""
        if not peer:
            return "unknown"
        peer = normalise_peer(peer)
        if forwarded_for and self.peer_trusted(peer):
            return self.resolve(peer, forwarded_for)[0]
        return peer
