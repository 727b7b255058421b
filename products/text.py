"""Words of the catalogue's search (no store, no HTTP): what a product indexes and a query asks.

A query word matches a product when it starts a word of the product's name, description or
tags, case-insensitively (``phone`` finds "Phones", not "smartphone"). Both the domain (which
reads queries) and the repository (which lays out the search keys) need these rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

WORD_RE = re.compile(r"\w+")
MAX_SEARCH_WORDS = 10


def words(text: str) -> list[str]:
    """The normalized words of ``text`` (case-folded ``\\w+`` runs), in order."""
    return WORD_RE.findall(text.casefold())


def search_words(search: str) -> tuple[str, ...]:
    """The distinct words of a search, at most :data:`MAX_SEARCH_WORDS`, without a word that
    another one starts with (``ka kalo`` asks no more than ``kalo``)."""
    distinct = tuple(dict.fromkeys(words(search)))[:MAX_SEARCH_WORDS]
    return tuple(w for w in distinct if not any(o != w and o.startswith(w) for o in distinct))


def search_fields(name: str, description: str, tags: Iterable[str]) -> tuple[str, list[str]]:
    """``searchText`` (lower-case name, description, tags) and the distinct words it indexes."""
    text = " ".join([name, description, *tags]).casefold()
    return text, sorted(set(words(text)))


def has_words(text: str, tokens: Iterable[str]) -> bool:
    """True when every token starts a word of ``text`` (already case-folded)."""
    return all(re.search(r"(?<!\w)" + re.escape(token), text) for token in tokens)
