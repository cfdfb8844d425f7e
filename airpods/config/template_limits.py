"""Resource limits for config templates: no template can hang airpods or eat its memory.

Jinja's sandbox stops a template from touching files or internals, not from computing
`{{ 9**(9**9) }}` or `{{ 'a' * 10**9 }}`. This sandbox refuses, *before* computing it, anything
that would be large, and counts the work a whole configuration's templates do:

- one rendered value: at most MAX_VALUE characters (64 KiB); any string, list or tuple a
  template builds, passes to a call or keeps in a `namespace()`: at most MAX_VALUE long;
- integers: at most MAX_INT_BITS bits (`**`, `*`, `+`, `-` are checked from their operands);
- work: at most MAX_WORK loop steps, calls and filter calls, and at most MAX_PRODUCED
  characters produced (outputs, call and operator results, loop bodies' text), for all the
  templates of one configuration together;
- the filters and string methods whose output can be much larger than their input (`center`,
  `indent`, `join`, `replace`, `format`, `batch`, `expandtabs`, ...) check an estimate first;
- `lipsum()` is gone (no config needs lorem ipsum).

Exceeding a limit raises TemplateLimitError; the resolver turns it into a ConfigError that names
the key whose template did it.
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from jinja2 import nodes
from jinja2.filters import make_attrgetter
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace

from airpods.errors import TemplateLimitError

MAX_VALUE = 64 * 1024
MAX_INT_BITS = 4096
MAX_WORK = 20_000  # a pathological macro spends about 20 µs a call
MAX_PRODUCED = 4 * 1024 * 1024
MAX_JSON_INDENT = 16
_LOOP_GUARD = "__airpods_loop__"  # a global no config can name (`__` names are unsafe)
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0 +\-]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[a-zA-Z%]")
_FORMATTER = string.Formatter()


def _too_long(what: str, size: int) -> TemplateLimitError:
    return TemplateLimitError(f"{what} would be {size} long; the limit is {MAX_VALUE}")


def check_size(value: Any, what: str = "a value") -> None:
    if isinstance(value, str | list | tuple | dict) and len(value) > MAX_VALUE:
        raise _too_long(what, len(value))


def _is_int(value: Any) -> bool:
    return isinstance(value, int)


def _bits(value: int) -> int:
    return abs(value).bit_length()


def _check_int(bits: int) -> None:
    if bits > MAX_INT_BITS:
        raise TemplateLimitError(
            f"a number of about {bits} bits; the limit is {MAX_INT_BITS} bits"
        )


def _check_width(value: Any, what: str) -> None:
    if _is_int(value) and abs(value) > MAX_VALUE:
        raise TemplateLimitError(f"{what} {value} is over the limit of {MAX_VALUE}")


def _spec_number(text: str | None, what: str) -> int:
    if not text or text == "*":
        return 0
    if len(text) > 9:  # int() of a huge digit string is slow and limited
        raise TemplateLimitError(f"{what} {text[:12]}... is over the limit of {MAX_VALUE}")
    number = int(text)
    _check_width(number, what)
    return number


def _longest(values: Iterable[Any]) -> int:
    return max((len(value) if isinstance(value, str) else len(str(value)) for value in values),
               default=0)


def check_percent_format(fmt: str, args: Any) -> None:
    """`fmt % args` stays under MAX_VALUE: widths, precisions and repeated fields checked."""
    values = list(args) if isinstance(args, tuple) else [args]
    for value in values:
        _check_width(value, "a '*' width")
    fields = width = 0
    for match in _PERCENT_SPEC.finditer(fmt):
        fields += 1
        width += _spec_number(match[1], "a width") + _spec_number(match[2], "a precision")
    size = len(fmt) + fields * _longest(values) + width
    if size > MAX_VALUE:
        raise _too_long("a formatted string", size)


def check_brace_format(fmt: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Like check_percent_format, for `str.format` / `format_map`."""
    values = [*args, *kwargs.values()]
    if len(args) == 1 and isinstance(args[0], dict):  # format_map
        values = [*values, *args[0].values()]
    for value in values:
        _check_width(value, "a nested width")
    fields = width = 0
    for _literal, field, spec, _conversion in _FORMATTER.parse(fmt):
        if field is None:
            continue
        fields += 1
        for number in re.findall(r"\d+", spec or ""):
            width += _spec_number(number, "a width")
    size = len(fmt) + fields * _longest(values) + width
    if size > MAX_VALUE:
        raise _too_long("a formatted string", size)


def _str_method_size(owner: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    """An upper bound for the length of `owner.<name>(*args, **kwargs)`; len(owner) for the
    methods that cannot grow a string much."""
    first = args[0] if args else None
    if name in ("ljust", "rjust", "center", "zfill"):
        width = first if first is not None else kwargs.get("width", 0)
        _check_width(width, "a width")
        return max(len(owner), width if _is_int(width) else 0)
    if name == "expandtabs":
        tabsize = first if first is not None else kwargs.get("tabsize", 8)
        return len(owner) + owner.count("\t") * (max(tabsize, 0) if _is_int(tabsize) else 0)
    if name == "replace" and len(args) >= 2:
        return _replace_size(owner, args[0], args[1])
    if name in ("format", "format_map"):
        check_brace_format(owner, args, kwargs)
    if name == "translate" and isinstance(first, dict):
        return len(owner) * max(_longest(first.values()), 1)
    return len(owner)


def _replace_size(text: Any, old: Any, new: Any) -> int:
    if not (isinstance(text, str) and isinstance(old, str) and isinstance(new, str)):
        return 0
    count = len(text) + 1 if old == "" else text.count(old)
    return len(text) + count * len(new)


class LimitedSandbox(ImmutableSandboxedEnvironment):
    """The sandbox templates render in; one per configuration load (the budgets are shared
    by all of its templates)."""

    intercepted_binops = frozenset({"*", "**", "+", "-", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(finalize=self._finalize, **options)
        self.work_left = MAX_WORK
        self.produced_left = MAX_PRODUCED
        self.globals.pop("lipsum", None)
        self.globals["namespace"] = _limited_namespace
        self.globals[_LOOP_GUARD] = self._loop
        self.filters = {name: self._guarded_filter(name, f) for name, f in self.filters.items()}

    # --- budgets ---------------------------------------------------------------------------

    def spend(self, steps: int = 1) -> None:
        self.work_left -= steps
        if self.work_left < 0:
            raise TemplateLimitError(
                f"templates do too much work: over {MAX_WORK} loop steps and calls"
            )

    def produce(self, value: Any) -> None:
        if isinstance(value, str | list | tuple):
            check_size(value)
            self._charge(len(value))

    def _charge(self, size: int) -> None:
        self.produced_left -= size
        if self.produced_left < 0:
            raise TemplateLimitError(
                f"templates produce too much text: over {MAX_PRODUCED} characters"
            )

    def _finalize(self, value: Any) -> Any:
        self.produce(value if isinstance(value, str) else str(value))
        return value

    def _loop(self, iterable: Iterable[Any], body_text: int) -> Iterator[Any]:
        for item in iterable:
            self.spend()
            self._charge(max(body_text, 0))  # the loop body's own text, output each time
            yield item

    # --- hooks the compiled templates call ---------------------------------------------------

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _check_binop(operator, left, right)
        result = super().call_binop(context, operator, left, right)
        self.produce(result)
        return result

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        self.spend()
        for value in (*args, *kwargs.values()):
            check_size(value, "a value passed to a call")
        inner = getattr(obj, "__wrapped__", obj)  # the sandbox wraps str.format
        owner, name = getattr(inner, "__self__", None), getattr(inner, "__name__", "")
        if isinstance(owner, str):
            if name == "join" and args:
                return self._join(owner, args[0])
            size = _str_method_size(owner, name, args, kwargs)
            if size > MAX_VALUE:
                raise _too_long(f"the result of str.{name}", size)
        result = super().call(context, obj, *args, **kwargs)
        self.produce(result)
        return result

    def _join(self, separator: str, items: Iterable[Any], attribute: Any = None) -> str:
        getter = make_attrgetter(self, attribute) if attribute is not None else None
        parts: list[str] = []
        size = 0
        for item in items:
            self.spend()
            text = str(getter(item) if getter is not None else item)
            size += len(text) + (len(separator) if parts else 0)
            if size > MAX_VALUE:
                raise _too_long("a joined string", size)
            parts.append(text)
        result = separator.join(parts)
        self.produce(result)
        return result

    # --- filters ---------------------------------------------------------------------------

    def _guarded_filter(self, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        skip = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0
        special = _special_filters(self)

        @functools.wraps(func)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            self.spend()
            for value in (*args, *kwargs.values()):
                check_size(value, f"the input of filter {name!r}")
            if name in special:
                return special[name](*args[skip:], **kwargs)
            check = _FILTER_CHECKS.get(name)
            if check is not None:
                check(*args[skip:], **kwargs)
            result = func(*args, **kwargs)
            self.produce(result)
            return result

        return guarded


def _special_filters(env: LimitedSandbox) -> dict[str, Callable[..., Any]]:
    """Filters replaced outright: they build their result from an iterable of any size."""

    def join(value: Iterable[Any], d: str = "", attribute: Any = None) -> str:
        return env._join(str(d), value, attribute)

    def sum_(iterable: Iterable[Any], attribute: Any = None, start: Any = 0) -> Any:
        getter = make_attrgetter(env, attribute) if attribute is not None else None
        if isinstance(start, str):
            raise TypeError("sum() can't sum strings [use ''.join(seq) instead]")
        total = start
        for item in iterable:
            env.spend()
            value = getter(item) if getter is not None else item
            _check_binop("+", total, value)
            total = total + value
        return total

    return {"join": join, "sum": sum_}


def _check_indent(s: Any, width: Any = 4, *_: Any, **__: Any) -> None:
    pad = len(width) if isinstance(width, str) else width if _is_int(width) else 0
    _check_width(pad, "an indent")
    text = str(s)
    size = len(text) + (text.count("\n") + 1) * max(pad, 0)
    if size > MAX_VALUE:
        raise _too_long("an indented string", size)


def _check_center(value: Any, width: Any = 80, *_: Any, **__: Any) -> None:
    _check_width(width, "a width")


def _check_replace(s: Any, old: Any = "", new: Any = "", *_: Any, **__: Any) -> None:
    size = _replace_size(str(s), old, new)
    if size > MAX_VALUE:
        raise _too_long("a replaced string", size)


def _check_format(value: Any, *args: Any, **kwargs: Any) -> None:
    check_percent_format(str(value), kwargs or args)


def _check_count(value: Any, count: Any = 1, *_: Any, **__: Any) -> None:
    _check_width(count, "a count")


def _check_wordwrap(s: Any, width: Any = 79, break_long_words: Any = True,
                    wrapstring: Any = None, *_: Any, **kwargs: Any) -> None:
    wrap = kwargs.get("wrapstring", wrapstring)
    text = str(s)
    lines = text.count("\n") + 1 + (len(text) // max(width, 1) if _is_int(width) else len(text))
    size = len(text) + lines * (len(wrap) if isinstance(wrap, str) else 1)
    if size > MAX_VALUE:
        raise _too_long("a wrapped string", size)


def _check_tojson(value: Any, indent: Any = None, *_: Any, **__: Any) -> None:
    size = len(indent) if isinstance(indent, str) else indent if _is_int(indent) else 0
    if size > MAX_JSON_INDENT:
        raise TemplateLimitError(f"tojson's indent may be at most {MAX_JSON_INDENT}")


_FILTER_CHECKS: dict[str, Callable[..., None]] = {
    "indent": _check_indent,
    "center": _check_center,
    "replace": _check_replace,
    "format": _check_format,
    "batch": _check_count,
    "slice": _check_count,
    "wordwrap": _check_wordwrap,
    "tojson": _check_tojson,
}


def _check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse, before computing it, an operation whose result would break a limit."""
    ints = _is_int(left) and _is_int(right)
    if operator == "**":
        if ints and right > 0 and abs(left) > 1:
            _check_int(right * _bits(left))
    elif operator == "*":
        if ints:
            _check_int(_bits(left) + _bits(right))
            return
        seq, times = (left, right) if _is_int(right) else (right, left)
        if isinstance(seq, str | list | tuple) and _is_int(times):
            size = len(seq) * max(times, 0)
            if size > MAX_VALUE:
                raise _too_long("a repeated string or list", size)
    elif operator in ("+", "-"):
        if ints:
            _check_int(max(_bits(left), _bits(right)) + 1)
        sequences = isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple)
        if sequences and len(left) + len(right) > MAX_VALUE:
            raise _too_long("a concatenation", len(left) + len(right))
    elif operator == "%" and isinstance(left, str):
        check_percent_format(left, right)


class _LimitedNamespace(Namespace):
    """`namespace()`: the one way to carry a value across loop steps, so it is size-checked."""

    def __setitem__(self, name: str, value: Any) -> None:
        check_size(value, f"namespace value {name!r}")
        super().__setitem__(name, value)


def _limited_namespace(*args: Any, **kwargs: Any) -> Namespace:
    return _LimitedNamespace(*args, **kwargs)


def add_loop_guards(template: nodes.Template) -> nodes.Template:
    """Route every `{% for %}` through the sandbox's counting loop (changes `template`)."""
    for loop in list(template.find_all(nodes.For)):
        text = sum(_text_size(node) for node in loop.body)
        guard = nodes.Name(_LOOP_GUARD, "load", lineno=loop.lineno)
        loop.iter = nodes.Call(
            guard, [loop.iter, nodes.Const(text, lineno=loop.lineno)], [], None, None,
            lineno=loop.lineno,
        )
    return template


def _text_size(node: nodes.Node) -> int:
    size = len(node.data) if isinstance(node, nodes.TemplateData) else 0
    if isinstance(node, nodes.Const) and isinstance(node.value, str):
        size += len(node.value)
    return size + sum(_text_size(child) for child in node.iter_child_nodes())
