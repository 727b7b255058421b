"""Template rendering (R3): two Jinja2 sandboxes, the ``money`` filter, the context and the
missing-variable list.

``body_html`` renders with autoescape on, ``subject`` and ``body_text`` with it off. Unknown
names and attributes render empty (``ChainableUndefined``); touching an unsafe attribute
raises ``SecurityError`` at once instead of rendering empty, so a template probing Python
internals fails loudly. The rendered subject is flattened to one line so no header can be
injected through it.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Literal

from jinja2 import ChainableUndefined, Template, TemplateSyntaxError, Undefined, meta
from jinja2.sandbox import SandboxedEnvironment, SecurityError

from notifications.sandbox import (
    DEFAULT_SECONDS,
    DEFAULT_STEPS,
    Budget,
    BudgetedSandbox,
    BudgetExceeded,
    enforce,
    finalize_checked,
)

Kind = Literal["subject", "body_html", "body_text"]
SOURCES: tuple[Kind, ...] = ("subject", "body_html", "body_text")

BUILTINS: frozenset[str] = frozenset(
    {
        "current_year",
        "current_date",
        "current_datetime",
        "company_name",
        "support_email",
        "recipient_name",
        "recipient_email",
    }
)

MAX_RENDERED_CHARS = 2 * 1024 * 1024
"""A rendered subject or body longer than this is a rendering failure (keeps one message bounded)."""

RENDER_THREADS = 4
"""Worker threads for rendering: a render never runs on the event loop."""
_GRACE_SECONDS = 1.0


class RenderError(Exception):
    """Rendering this template with this data failed; ``str(exc)`` is the reason."""


class TooExpensive(RenderError):
    """The template exceeded the rendering budget (work, time or size)."""


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    body_html: str | None
    body_text: str | None
    missing_variables: list[str]


def _finalize(value: Any) -> Any:
    if isinstance(value, str):  # Markup included: already-safe HTML stays unescaped
        return value
    if value is None or isinstance(value, Undefined):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    return str(value)


_CENTS = Decimal("0.01")
_WIDE = Context(prec=400)


def money(value: Any) -> Any:
    """A number or numeric string → two decimals, half-up; empty/undefined → ``""``; other values unchanged."""
    if value is None or isinstance(value, Undefined) or value == "":
        return ""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float, Decimal)):
        text = str(value)
    elif isinstance(value, str):
        text = value.strip()
    else:
        return value
    try:
        amount = Decimal(text)
        if not amount.is_finite():
            return value
        return str(amount.quantize(_CENTS, rounding=ROUND_HALF_UP, context=_WIDE))
    except (InvalidOperation, ValueError):
        return value


class _Sandbox(BudgetedSandbox):
    """The budgeted sandbox with unsafe attributes raising instead of rendering empty."""

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        raise SecurityError(f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe.")


def _make_env(*, autoescape: bool) -> SandboxedEnvironment:
    env = _Sandbox(
        autoescape=autoescape,
        undefined=ChainableUndefined,
        finalize=finalize_checked(_finalize),
        keep_trailing_newline=True,
    )
    env.add_filter("money", money)
    return env


_LINE_BREAKS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")
_SPACES = re.compile(r" {2,}")


def one_line(text: str) -> str:
    """CR, LF, every other line break or control character → one space; spaces collapsed; trimmed."""
    return _SPACES.sub(" ", _LINE_BREAKS.sub(" ", text)).strip()


_UPPER = re.compile(r"[A-Z]")
_UNDERSCORE_LOWER = re.compile(r"_([a-z])")


def other_spellings(key: str) -> set[str]:
    """``customerName`` → ``{"customer_name"}``; ``order_number`` → ``{"orderNumber"}``."""
    snake = _UPPER.sub(lambda m: "_" + m.group(0).lower(), key)
    camel = _UNDERSCORE_LOWER.sub(lambda m: m.group(1).upper(), key)
    return {name for name in (snake, camel) if name != key}


def build_context(
    data: Mapping[str, Any],
    *,
    now: datetime,
    company_name: str,
    support_email: str,
    recipient_name: str,
    recipient_email: str,
) -> dict[str, Any]:
    """Built-ins, then each data key's other spelling (when absent), then ``data`` itself."""
    context: dict[str, Any] = {
        "current_year": now.year,
        "current_date": now.strftime("%Y-%m-%d"),
        "current_datetime": now.strftime("%Y-%m-%d %H:%M:%S"),
        "company_name": company_name,
        "support_email": support_email,
        "recipient_name": recipient_name,
        "recipient_email": recipient_email,
    }
    for key, value in data.items():
        for alias in other_spellings(key):
            if alias not in data:
                context[alias] = value
    context.update(data)
    return context


def syntax_error_message(exc: TemplateSyntaxError) -> str:
    return f"Template syntax error at line {exc.lineno}: {exc.message}"


class Renderer:
    """Compiles (with a cache keyed by source) and renders the three parts of a template.

    Rendering runs in a small pool of worker threads under a :class:`~notifications.sandbox.Budget`
    (``seconds`` of wall time, steps, characters), so the event loop keeps answering while a
    template renders and a hostile one stops itself within about ``seconds``.
    """

    def __init__(
        self, *, seconds: float = DEFAULT_SECONDS, steps: int = DEFAULT_STEPS, threads: int = RENDER_THREADS
    ) -> None:
        self._html = _make_env(autoescape=True)
        self._plain = _make_env(autoescape=False)
        self._globals = frozenset(self._html.globals)
        self.seconds = seconds
        self.steps = steps
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="render")
        self.compile = lru_cache(maxsize=512)(self._compile)
        self._undeclared = lru_cache(maxsize=512)(self._find_undeclared)

    def close(self) -> None:
        """Stop taking renders (a running one ends by itself within its budget)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _env(self, kind: Kind) -> SandboxedEnvironment:
        return self._html if kind == "body_html" else self._plain

    def _compile(self, kind: Kind, source: str) -> Template:
        return self._env(kind).from_string(source)

    def _find_undeclared(self, kind: Kind, source: str) -> frozenset[str]:
        return frozenset(meta.find_undeclared_variables(self._env(kind).parse(source)))

    def check_syntax(self, kind: Kind, source: str) -> str | None:
        """None when ``source`` compiles, else ``"Template syntax error at line N: …"``."""
        try:
            self.compile(kind, source)
        except TemplateSyntaxError as exc:
            return syntax_error_message(exc)
        return None

    def referenced(self, sources: Mapping[Kind, str | None]) -> set[str]:
        """Every free name the given sources use, Jinja globals (``range`` …) left out."""
        names: set[str] = set()
        for kind, source in sources.items():
            if source:
                names |= self._undeclared(kind, source)
        return names - self._globals

    def derived_variables(self, sources: Mapping[Kind, str | None]) -> list[str]:
        """The sorted names the sources reference, minus the built-ins."""
        return sorted(self.referenced(sources) - BUILTINS)

    async def _in_thread(self, func: Any, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._pool, func, *args)
        try:
            return await asyncio.wait_for(future, timeout=self.seconds + _GRACE_SECONDS)
        except TimeoutError:  # a single step overran the budget's checks: answer, let it finish alone
            raise TooExpensive(f"rendering took longer than {self.seconds:g} s") from None

    async def vet(
        self, sources: Mapping[Kind, str | None], context: Mapping[str, Any]
    ) -> list[dict[str, str]]:
        """Field errors for a template being stored: syntax errors, and a trial render with
        ``context`` (the built-ins) that exceeds the budget. Other runtime errors depend on the
        data and are left to sending. Runs off the event loop."""
        return await self._in_thread(self._vet, sources, context)

    def _vet(self, sources: Mapping[Kind, str | None], context: Mapping[str, Any]) -> list[dict[str, str]]:
        errors: list[dict[str, str]] = []
        for kind in SOURCES:
            source = sources.get(kind)
            if not source:
                continue
            problem = self.check_syntax(kind, source)
            if problem is None:
                try:
                    with enforce(Budget(seconds=self.seconds, steps=self.steps)):
                        self._render_one(kind, source, context)
                except (TooExpensive, BudgetExceeded) as exc:
                    problem = f"Template exceeds the rendering budget: {exc}"
                except Exception:  # depends on the data: reported when sending
                    pass
            if problem:
                errors.append({"field": kind, "message": problem})
        return errors

    async def render_async(self, sources: Mapping[Kind, str | None], context: Mapping[str, Any]) -> Rendered:
        """:meth:`render` in a worker thread: the event loop keeps answering meanwhile."""
        return await self._in_thread(self.render, sources, context)

    def _render_one(self, kind: Kind, source: str, context: Mapping[str, Any]) -> str:
        """One part, streamed so its size is checked while it is produced."""
        pieces: list[str] = []
        total = 0
        for piece in self.compile(kind, source).generate(context):
            total += len(piece)
            if total > MAX_RENDERED_CHARS:
                raise TooExpensive(f"the rendered {kind} is longer than {MAX_RENDERED_CHARS} characters")
            pieces.append(piece)
        return "".join(pieces)

    def render(self, sources: Mapping[Kind, str | None], context: Mapping[str, Any]) -> Rendered:
        """Render subject and bodies in the calling thread under a fresh budget; raise
        :class:`RenderError` with the reason on any failure (the service calls :meth:`render_async`)."""
        out: dict[Kind, str | None] = {}
        try:
            missing = sorted(self.referenced(sources) - set(context))
            with enforce(Budget(seconds=self.seconds, steps=self.steps)):
                for kind in SOURCES:
                    source = sources.get(kind)
                    out[kind] = self._render_one(kind, source, context) if source else (
                        "" if kind == "subject" else None
                    )
        except RenderError:
            raise
        except BudgetExceeded as exc:
            raise TooExpensive(str(exc)) from exc
        except TemplateSyntaxError as exc:
            raise RenderError(syntax_error_message(exc)) from exc
        except Exception as exc:  # any runtime error of the template with this data
            raise RenderError(str(exc) or type(exc).__name__) from exc
        return Rendered(
            subject=one_line(out["subject"] or ""),
            body_html=out["body_html"],
            body_text=out["body_text"],
            missing_variables=missing,
        )
