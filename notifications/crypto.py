"""The SMTP password at rest: a Fernet token whose key comes from ``NOTIFICATIONS_SECRET`` (R6).

When the secret is itself a Fernet key (url-safe base64 of 32 bytes, e.g. from
``Fernet.generate_key()``) it is used as is; any other string is stretched with SHA-256 and
url-safe base64-encoded. Changing the secret makes stored tokens undecryptable: attempts then
fail transiently with ``"SMTP password cannot be decrypted"`` until the password is saved again.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.fernet import Fernet


class PasswordUndecryptable(Exception):
    """The stored token does not decrypt with the current key."""


_FERNET_KEY = re.compile(r"[A-Za-z0-9_-]{43}=")


def derive_key(secret: str) -> bytes:
    """The Fernet key for ``secret`` (see the module docstring)."""
    raw = secret.encode("utf-8")
    if _FERNET_KEY.fullmatch(secret):
        return raw
    return base64.urlsafe_b64encode(hashlib.sha256(raw).digest())


class PasswordBox:
    """Encrypts and decrypts the SMTP password with one Fernet key."""

    def __init__(self, secret: str) -> None:
        self._key = derive_key(secret)
        self._fernet_box: Fernet | None = None

    @property
    def _fernet(self) -> Fernet:
        if self._fernet_box is None:
            # imported on first use: about 11 MB of RSS that an idle service without a stored
            # SMTP password never needs (bench/footprint.py)
            from cryptography.fernet import Fernet

            self._fernet_box = Fernet(self._key)
        return self._fernet_box

    def encrypt(self, password: str) -> str:
        return self._fernet.encrypt(password.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        from cryptography.fernet import InvalidToken  # imported on first use, as Fernet is

        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError, ValueError) as exc:
            raise PasswordUndecryptable("SMTP password cannot be decrypted") from exc
