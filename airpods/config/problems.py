"""Config problems -> one ConfigError: pydantic's errors as Problems with a TOML key path and a
plain message, and each problem located in the file (and line) that set the key.

The loader (airpods.config.loader) layers the files; this module maps what went wrong onto them.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any, Union, get_args, get_origin

from airpods.config.files import Layer, key_before
from airpods.config.schema import AirpodsConfig
from airpods.errors import ConfigError
from airpods.keys import KeyPath, Problem, format_key_path

# --- pydantic errors -> problems --------------------------------------------------------------


def pydantic_problem(
    error: Mapping[str, Any],
    root: type[Any] = AirpodsConfig,
    not_here: Callable[[KeyPath], Collection[str]] = lambda loc: (),
) -> Problem:
    """One pydantic error as a Problem with a TOML key path and a plain message. `root`: the
    model validated (for the known keys an unknown one is compared with); `not_here(loc)`: keys
    of that model which are not offered at loc (another kind's keys on a service)."""
    loc: KeyPath = tuple(error["loc"])
    is_key = bool(loc) and loc[-1] == "[key]"  # the key itself is invalid, not its value
    if is_key:
        loc = loc[:-1]
    kind, message = error["type"], str(error["msg"])
    if kind == "extra_forbidden":
        return _unknown_key(loc, root, not_here(loc[:-1]))
    if kind == "missing":
        return Problem(loc, "required key is missing")
    if message.startswith(("Value error, ", "Assertion failed, ")):
        message = message.split(", ", 1)[1]
    else:
        message = message[:1].lower() + message[1:]
        value = error.get("input")
        if isinstance(value, str | int | float | bool):
            message += f" (got {value!r})"
    return Problem(loc, f"invalid key: {message}" if is_key else message)


def _unknown_key(loc: KeyPath, root: type[Any], not_here: Collection[str]) -> Problem:
    name = str(loc[-1])
    known = [key for key in _known_keys(loc[:-1], root) if key not in not_here]
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        hint: str | None = f"did you mean {close[0]!r}?"
    else:
        hint = f"known keys: {', '.join(known)}" if known else None
    return Problem(loc, f"unknown key {name!r}", hint)


def _known_keys(loc: KeyPath, root: type[Any]) -> list[str]:
    """The field names of the schema model at `loc` (for did-you-mean on unknown keys)."""
    from pydantic import BaseModel

    annotation: Any = root
    for part in loc:
        annotation = _unwrap_optional(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(part))
            if field is None:
                return []
            annotation = field.annotation
        elif get_origin(annotation) in (dict, list):
            annotation = get_args(annotation)[-1]  # dict values / list items
        else:
            return []
    annotation = _unwrap_optional(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def _unwrap_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


# --- locating problems in files ---------------------------------------------------------------


def located(problems: list[Problem], layers: list[Layer]) -> ConfigError:
    """The first problem as a ConfigError, pointing at the layer that set the key.

    Problems in keys a later layer set come first: the defaults are assumed sound, so what the
    user wrote is the likelier cause.
    """
    problems = [_user_end(problem, layers) for problem in problems]
    problems.sort(key=lambda problem: -origin(problem.path, layers))
    first = problems[0]
    layer = layers[origin(first.path, layers)]
    line = find_line(layer.text, first.path) if layer.text is not None else None
    hint = first.hint
    if len(problems) > 1:
        more = f"{len(problems) - 1} more problem{'s' if len(problems) > 2 else ''} after this one"
        hint = f"{hint}; {more}" if hint else more
    return ConfigError(
        first.message, file=layer.label, key_path=format_key_path(first.path), line=line, hint=hint
    )


def _user_end(problem: Problem, layers: list[Layer]) -> Problem:
    other = problem.other_end
    if other is not None and origin(other.path, layers) > origin(problem.path, layers):
        return other
    return problem


def origin(path: KeyPath, layers: list[Layer]) -> int:
    """The index of the layer that set `path`.

    The layer that reaches deepest along `path` set the value (later layers win ties, since
    they replace); a missing key is blamed on the layer that wrote its table.
    """
    best, best_depth = 0, -1
    for index, layer in enumerate(layers):
        reached = depth(layer.data, path)
        if reached >= best_depth:
            best, best_depth = index, reached
    return best


def depth(data: Any, path: KeyPath) -> int:
    depth = 0
    for part in path:
        in_table = isinstance(data, dict) and isinstance(part, str) and part in data
        in_array = isinstance(data, list) and isinstance(part, int) and part < len(data)
        if not (in_table or in_array):
            break
        data = data[part]
        depth += 1
    return depth


def find_line(text: str, path: KeyPath) -> int | None:
    """The line that sets `path` in TOML `text`, or of its nearest enclosing key or table."""
    lines = key_lines(text)
    for size in range(len(path), 0, -1):
        prefix = path[:size]
        found = [line for key, line in lines.items() if key[:size] == prefix]
        if found:
            return min(found)
    return None


def key_lines(text: str) -> dict[KeyPath, int]:
    """Map each table header and `key = value` line in TOML `text` to its 1-based line number.

    A scan, not a parser (tomlkit keeps no line numbers): good enough to point at a key. Keys
    inside inline tables map to the line of the key that holds the inline table.
    """
    lines: dict[KeyPath, int] = {}
    table: KeyPath = ()
    array_counts: dict[KeyPath, int] = {}
    open_string: str | None = None  # the delimiter of a multi-line string being skipped
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if open_string:
            if line.count(open_string) % 2:
                open_string = None
            continue
        if stripped.startswith("[["):
            key = key_before(stripped[2:], "]]")
            if key is not None:
                index = array_counts.get(key, 0)
                array_counts[key] = index + 1
                table = (*key, index)
                lines.setdefault(table, number)
        elif stripped.startswith("["):
            key = key_before(stripped[1:], "]")
            if key is not None:
                table = key
                lines.setdefault(table, number)
        elif (key := key_before(stripped, "=")) is not None:
            lines.setdefault((*table, *key), number)
            open_string = next((d for d in ('"""', "'''") if stripped.count(d) % 2), None)
    return lines


def secret_error(
    exc: OSError | UnicodeDecodeError, path: Path, key: KeyPath, layers: list[Layer]
) -> ConfigError:
    reason = "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else exc.strerror or str(exc)
    layer = layers[origin(key, layers)]
    return ConfigError(
        f"cannot read the generated secret {path}: {reason}",
        file=layer.label,
        key_path=format_key_path(key),
        line=find_line(layer.text, key) if layer.text is not None else None,
        hint=getattr(exc, "hint", None)
        or f"fix or remove {path}; airpods writes a new one when it is missing or empty",
    )


def set_secret_problem(service: str, var: Any, value: Any) -> Problem | None:
    """What is wrong with the value a config gave the generated secret `var`, if anything."""
    from airpods.secrets import key_problem

    if not isinstance(var, str) or not isinstance(value, str):
        return None  # not set here (generated), or validation reports the type
    path = ("services", service, "env", var)
    if value == "":
        return Problem(
            path,
            f"{var} is a generated secret set to an empty string: {service} would run without"
            " a key",
            f"remove the line to use the generated key, or set services.{service}."
            "generated_secrets = [] to run without a key",
        )
    problem = key_problem(value)
    if problem:
        return Problem(
            path,
            f"the key {problem}",
            "write the key as one word, or remove the line to use the generated key",
        )
    return None
