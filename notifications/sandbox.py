"""The Jinja2 sandbox with a rendering budget enforced while a template runs (issue 11).

A template is code an admin (or anyone holding the service key) writes and any caller of
``/send`` feeds with data, so one render must not be able to take seconds of CPU or gigabytes
of memory. Rendering runs in a worker thread (see :mod:`notifications.rendering`); a thread
cannot be killed, so the checks below make a hostile render stop by itself:

* **Sizes before work.** Width and count arguments (``center``, ``indent``, ``wordwrap``,
  ``truncate``, ``batch``, ``slice``, ``ljust``/``rjust``/``zfill``/``expandtabs``), the growth
  of ``replace``/``join``, printf and ``str.format`` widths, ``*``/``+``/``**`` results and every
  value turned into text are checked *before* the result is built, so nothing larger than
  :data:`MAX_VALUE_CHARS` is ever allocated; these static checks hold at compile time too
  (Jinja folds constant filter calls while compiling).
* **A budget while running** (:class:`Budget`, one per render, thread-local): every loop
  iteration (every ``for`` iterable is wrapped when the template is parsed), filter, call,
  operator and output piece spends a step and checks the deadline; text produced adds to a
  cumulative character budget; ``range`` is bounded per call.
* Built-in containers cannot be mutated (``list.append`` would let a loop build unbounded
  structures out of references).

Exceeding any of these raises :class:`BudgetExceeded`, which the renderer reports as a
rendering failure (400).
"""

from __future__ import annotations

import operator
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

from jinja2 import nodes, pass_context
from jinja2.sandbox import SandboxedEnvironment, SecurityError, modifies_known_mutable

MAX_VALUE_CHARS = 1024 * 1024
"""No single value (string, or the text a container would become) may exceed this."""
MAX_WIDTH = 10_000
"""The largest width/count argument of a padding or batching filter or method."""
MAX_RANGE = 10_000
"""The most items one ``range()`` may produce."""
MAX_INT_BITS = 64 * 1024
"""The largest integer an arithmetic operator may produce (about 19,700 digits)."""
DEFAULT_STEPS = 200_000
DEFAULT_CHARS = 16 * 1024 * 1024
DEFAULT_SECONDS = 1.0


class BudgetExceeded(SecurityError):
    """The template asked for more work or memory than one render may use."""


@dataclass
class Budget:
    """What one render may still spend: a deadline, steps and characters of text produced."""

    seconds: float = DEFAULT_SECONDS
    steps: int = DEFAULT_STEPS
    chars: int = DEFAULT_CHARS
    deadline: float = field(init=False)

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.seconds

    def tick(self, steps: int = 1) -> None:
        self.steps -= steps
        if self.steps < 0:
            raise BudgetExceeded("the template does too much work (too many loop iterations or calls)")
        if time.monotonic() > self.deadline:
            raise BudgetExceeded(f"rendering took longer than {self.seconds:g} s")

    def spend(self, chars: int) -> None:
        self.chars -= chars
        if self.chars < 0:
            raise BudgetExceeded("the template produces too much text")


_local = threading.local()


def current() -> Budget | None:
    """The budget of the render running in this thread (None outside a render, e.g. compiling)."""
    return getattr(_local, "budget", None)


@contextmanager
def enforce(budget: Budget) -> Iterator[Budget]:
    """Make ``budget`` the one every check in this thread spends from."""
    previous = current()
    _local.budget = budget
    try:
        yield budget
    finally:
        _local.budget = previous


def _tick(steps: int = 1) -> None:
    budget = current()
    if budget is not None:
        budget.tick(steps)


def _spend(value: Any) -> None:
    budget = current()
    if budget is not None and isinstance(value, str):
        budget.spend(len(value))


# ---------------------------------------------------------------------------- size checks


def size_of(value: Any, limit: int = MAX_VALUE_CHARS) -> int:
    """About how many characters ``value`` would become as text; stops counting past ``limit``."""
    total = 0
    stack = [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, (str, bytes)):
            total += len(item)
        elif isinstance(item, dict):
            total += 4 * len(item) + 2
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            total += 2 * len(item) + 2
            stack.extend(item)
        elif isinstance(item, range):
            total += 8 * len(item)
        elif isinstance(item, int) and not isinstance(item, bool):
            total += item.bit_length() // 3 + 1
        else:
            total += 8
    return total


def check_size(value: Any, what: str = "value") -> None:
    if size_of(value) > MAX_VALUE_CHARS:
        raise BudgetExceeded(f"a {what} would be longer than {MAX_VALUE_CHARS} characters")


def check_width(value: Any, what: str) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, int) and abs(value) > MAX_WIDTH:
        raise BudgetExceeded(f"{what} {value} is larger than {MAX_WIDTH}")
    if isinstance(value, str) and len(value) > MAX_WIDTH:
        raise BudgetExceeded(f"{what} is longer than {MAX_WIDTH} characters")


def _expect(total: int, what: str) -> None:
    if total > MAX_VALUE_CHARS:
        raise BudgetExceeded(f"the result of {what} would be longer than {MAX_VALUE_CHARS} characters")


_PRINTF = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[a-zA-Z%]")
_FORMAT_FIELD = re.compile(r"\{[^{}]*?:([^{}]*(?:\{[^{}]*\}[^{}]*)*)\}")
_DIGITS = re.compile(r"\d+")


def check_printf(template: Any, args: Any) -> None:
    """``'%800000000s' % x`` and the ``format`` filter: no width or precision over the limit."""
    if not isinstance(template, str):
        return
    starred = False
    for match in _PRINTF.finditer(template):
        for number in match.groups():
            if number == "*":
                starred = True
            elif number is not None and int(number) > MAX_WIDTH:
                raise BudgetExceeded(f"format width {number} is larger than {MAX_WIDTH}")
    if starred:
        values = args if isinstance(args, (tuple, list)) else (args,)
        for value in values:
            check_width(value, "format width")


def check_str_format(template: Any, args: Iterable[Any]) -> None:
    """``'{:>800000000}'.format(x)``: no width in a format spec over the limit."""
    if not isinstance(template, str):
        return
    for spec in _FORMAT_FIELD.findall(template):
        for number in _DIGITS.findall(spec):
            if int(number) > MAX_WIDTH:
                raise BudgetExceeded(f"format width {number} is larger than {MAX_WIDTH}")
        if "{" in spec:  # a nested field: the width comes from the arguments
            for value in args:
                check_width(value, "format width")


# ---------------------------------------------------------------------------- filters


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str, default: Any) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def _check_replace(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    old, new = _arg(args, kwargs, 0, "old", ""), _arg(args, kwargs, 1, "new", "")
    count = _arg(args, kwargs, 2, "count", None)
    text = value if isinstance(value, str) else str(value) if isinstance(value, (int, float)) else ""
    if not isinstance(old, str) or not isinstance(new, str):
        return
    hits = len(text) + 1 if old == "" else text.count(old)
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    _expect(len(text) + hits * max(0, len(new) - len(old)), "replace")


def _check_indent(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    width = _arg(args, kwargs, 0, "width", 4)
    check_width(width, "indent width")
    pad = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
    text = value if isinstance(value, str) else ""
    _expect(len(text) + (text.count("\n") + 1) * pad, "indent")


def _check_wordwrap(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    width = _arg(args, kwargs, 0, "width", 79)
    check_width(width, "wordwrap width")
    wrap = _arg(args, kwargs, 2, "wrapstring", None)
    text = value if isinstance(value, str) else ""
    if isinstance(wrap, str) and isinstance(width, int) and width > 0:
        _expect(len(text) + (len(text) // width + text.count("\n") + 1) * len(wrap), "wordwrap")


def _check_join(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    separator = _arg(args, kwargs, 0, "d", "")
    items = len(value) if hasattr(value, "__len__") else 0
    _expect(size_of(value) + size_of(separator) * items, "join")


_FILTER_CHECKS: dict[str, Callable[[Any, tuple[Any, ...], dict[str, Any]], None]] = {
    "center": lambda v, a, k: check_width(_arg(a, k, 0, "width", 80), "center width"),
    "indent": _check_indent,
    "wordwrap": _check_wordwrap,
    "truncate": lambda v, a, k: check_width(_arg(a, k, 0, "length", 255), "truncate length")
    if not isinstance(_arg(a, k, 0, "length", 255), int) or _arg(a, k, 0, "length", 255) > MAX_VALUE_CHARS
    else None,
    "replace": _check_replace,
    "format": lambda v, a, k: check_printf(v, k or a),
    "batch": lambda v, a, k: check_width(_arg(a, k, 0, "linecount", 1), "batch size"),
    "slice": lambda v, a, k: check_width(_arg(a, k, 0, "slices", 1), "slice count"),
    "join": _check_join,
}


def budgeted_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` with a step spent, its value and arguments checked before and its text after."""
    check = _FILTER_CHECKS.get(name)
    skip = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _tick()
        value, rest = (args[skip], args[skip + 1 :]) if len(args) > skip else (None, ())
        check_size(value, f"{name} input")
        if check is not None:
            check(value, rest, kwargs)
        result = func(*args, **kwargs)
        if isinstance(result, str):
            check_size(result, f"{name} result")
            _spend(result)
        return result

    return wrapper


@pass_context
def loop_budget(context: Any, iterable: Any) -> Iterator[Any]:
    """Every ``for`` loop's iterable, one step per item (inserted by :meth:`BudgetedSandbox._parse`)."""
    for item in iterable:
        _tick()
        yield item


def checked_value(value: Any) -> Any:
    """An operand of ``~``: no larger than one value may be (inserted at parse time)."""
    _tick()
    check_size(value, "concatenated value")
    return value


def bounded_range(*args: int) -> range:
    """``range()`` for templates: at most :data:`MAX_RANGE` items."""
    values = range(*args)
    if len(values) > MAX_RANGE:
        raise BudgetExceeded(f"range() is limited to {MAX_RANGE} items")
    return values


# ---------------------------------------------------------------------------- calls on strings

_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill"})
_REFUSED_METHODS = frozenset({"translate", "maketrans"})


def _check_string_method(method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    target = getattr(method, "__wrapped__", method)
    owner = getattr(target, "__self__", None)
    if not isinstance(owner, (str, bytes)):
        return
    name = getattr(target, "__name__", "")
    if name in _REFUSED_METHODS:
        raise SecurityError(f"str.{name} is not available in templates")
    if name in _WIDTH_METHODS:
        check_width(_arg(args, kwargs, 0, "width", 0), f"{name} width")
    elif name == "expandtabs":
        size = _arg(args, kwargs, 0, "tabsize", 8)
        check_width(size, "tab size")
        if isinstance(size, int):
            _expect(len(owner) + owner.count("\t" if isinstance(owner, str) else b"\t") * size, "expandtabs")
    elif name == "replace" and isinstance(owner, str):
        _check_replace(owner, args, kwargs)
    elif name == "join":
        _check_join(args[0] if args else (), (owner,), {})
    elif name in {"format", "format_map"}:
        check_str_format(owner, [*args, *kwargs.values()] if name == "format" else list(args))


# ---------------------------------------------------------------------------- the environment


class BudgetedSandbox(SandboxedEnvironment):
    """The sandbox: unsafe attributes raise, containers are read-only, every operation is
    size-checked and spends from the current :class:`Budget`."""

    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals["range"] = bounded_range
        self.filters = {name: budgeted_filter(name, func) for name, func in self.filters.items()}
        self.filters["_loop_budget"] = loop_budget
        self.filters["_checked_value"] = checked_value

    def add_filter(self, name: str, func: Callable[..., Any]) -> None:
        self.filters[name] = budgeted_filter(name, func)

    @staticmethod
    def concat(parts: Iterable[str]) -> str:  # type: ignore[override]
        """Joins the output buffers of macros, blocks and ``{% set %}`` blocks, within the limit."""
        collected: list[str] = []
        total = 0
        for part in parts:
            total += len(part)
            if total > MAX_VALUE_CHARS:
                raise BudgetExceeded(f"a block of output would be longer than {MAX_VALUE_CHARS} characters")
            collected.append(part)
        _tick()
        text = "".join(collected)
        _spend(text)
        return text

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        """Parse, then wrap every loop's iterable and every ``~`` operand in a budget check."""
        tree = super()._parse(source, name, filename)
        for loop in list(tree.find_all(nodes.For)):
            loop.iter = nodes.Filter(loop.iter, "_loop_budget", [], [], None, None, lineno=loop.iter.lineno)
        for concat in list(tree.find_all(nodes.Concat)):
            concat.nodes = [
                nodes.Filter(part, "_checked_value", [], [], None, None, lineno=part.lineno) for part in concat.nodes
            ]
        return tree

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        return super().is_safe_attribute(obj, attr, value) and not modifies_known_mutable(obj, attr)

    def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        _tick()
        _check_string_method(obj, args, kwargs)
        result = super().call(context, obj, *args, **kwargs)
        if isinstance(result, str):
            check_size(result, "call result")
            _spend(result)
        return result

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        _tick()
        if operator_name == "**":
            return _power(left, right)
        if operator_name == "*":
            return _multiply(left, right)
        if operator_name == "%":
            check_printf(left, right)
            result = operator.mod(left, right)
        else:
            if isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
                _expect(size_of(left) + size_of(right), "+")
            result = operator.add(left, right)
        _check_number(result)
        if isinstance(result, str):
            check_size(result, "result")
            _spend(result)
        return result


def _check_number(value: Any) -> None:
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise BudgetExceeded("a number in the template grew too large")


def _power(left: Any, right: Any) -> Any:
    if isinstance(left, int) and isinstance(right, int) and right > 0:
        if max(left.bit_length(), 1) * right > MAX_INT_BITS and abs(left) > 1:
            raise BudgetExceeded("a number in the template grew too large")
    elif isinstance(right, (int, float)) and abs(right) > 1000:
        raise BudgetExceeded("exponent is too large")
    return operator.pow(left, right)


def _multiply(left: Any, right: Any) -> Any:
    for seq, count in ((left, right), (right, left)):
        if isinstance(seq, (str, bytes, list, tuple)) and isinstance(count, int) and not isinstance(count, bool):
            _expect(size_of(seq) * max(count, 0), "*")
    result = operator.mul(left, right)
    _check_number(result)
    _spend(result)
    return result


def finalize_checked(finalize: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """The environment's ``finalize`` with the value's size checked first and its text counted."""

    def checked(value: Any) -> Any:
        _tick()
        check_size(value, "printed value")
        text = finalize(value)
        _spend(text)
        return text

    return checked
