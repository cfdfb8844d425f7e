"""Render `{{ ... }}` / `{% ... %}` templates in config values (sandboxed Jinja2).

Any string anywhere in the config tree may be a template. What a template can see:

- `services`, `runtime`, `cli`: the whole config, itself template-resolved;
- `host`: the detected host (`host.accelerator`, `host.physical_cores`, `host.gpu`,
  `host.memory_bytes`, `host.vram_bytes`, `host.gpu_name`). Inside a
  service it is that service's view: a service with `gpu.enabled = false` or `gpu.force_cpu =
  true` sees `host.accelerator == "cpu"`;
- `openai_backends`, `ollama_backends`: lists of `{name, url, api_key}`, one for every enabled
  service of a kind that joins the list (airpods.kinds: llama-server and ollama). A
  llama-server's `url` is `http://<network_aliases[0] or pod>:<ports[0].container>/v1` and its
  `api_key` the first key it checks (its `command_args.api_key`, else `env.LLAMA_API_KEY`);
- inside a service: its own keys by bare name (`default_model`, `ports[0].container`), its
  `vars` entries by bare name, and `name` (the service's name). The global names above win
  over a service key or var with the same name.

Values are resolved on demand, so references may chain across services in any order; a cycle
is an error naming every key in it. A rendered result is a string and is never rendered again
(a value cannot smuggle in a template). The sandbox blocks attribute access to internals
(`''.__class__`), so a template can read config values but not touch files or run code, and
resource limits (airpods.config.template_limits) keep it small and quick: a rendered value is at
most 64 KiB, and `{{ 9**(9**9) }}` or `{{ 'a' * 10**9 }}` is a config error before it is computed.
"""

from __future__ import annotations

import contextvars
import difflib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import partial
from typing import Any

from jinja2 import StrictUndefined, meta
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError
from jinja2.exceptions import TemplateError as JinjaError
from jinja2.utils import missing

from airpods.config.template_limits import (
    MAX_VALUE,
    LimitedSandbox,
    add_loop_guards,
)
from airpods.errors import ConfigError, TemplateError, TemplateLimitError, WiringError
from airpods.host import HostFacts
from airpods.keys import KeyPath, format_key_path

_MARKERS = ("{{", "{%", "{#")
_GLOBAL_TABLES = ("services", "runtime", "cli")
_ABSENT = object()
_TRUE = frozenset({"true", "1", "yes", "on", "t", "y"})
_FALSE = frozenset({"false", "0", "no", "off", "f", "n"})

# The names visible to the template being rendered, for "did you mean" on an undefined name.
_SCOPE_NAMES: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar(
    "airpods_template_scope", default=()
)


def _template_error(message: str, *, path: KeyPath, hint: str | None = None) -> TemplateError:
    return TemplateError(message, path=path, key_path=format_key_path(path), hint=hint)


def is_template(value: object) -> bool:
    return isinstance(value, str) and any(marker in value for marker in _MARKERS)


def resolve_tree(tree: Mapping[str, Any], host: HostFacts) -> dict[str, Any]:
    """A copy of `tree` (plain dicts/lists/scalars) with every template string rendered."""
    resolver = _Resolver(tree, host)
    return {key: resolver.resolve_node((key,), value) for key, value in tree.items()}


def _did_you_mean(name: object, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(name), list(candidates), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _Undefined(StrictUndefined):
    """Fails on any use, with a message that names what was looked up and suggests a fix."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        name, obj = self._undefined_name, self._undefined_obj
        if self._undefined_hint:
            return self._undefined_hint
        if obj is missing:
            return f"undefined name {name!r} in template" + _did_you_mean(name, _SCOPE_NAMES.get())
        if isinstance(obj, _TableView) and isinstance(name, str):
            return f"{obj.key_path} has no key {name!r}" + _did_you_mean(name, list(obj))
        return super()._undefined_message


class _TableView(Mapping[str, Any]):
    """A config table as templates see it: values are resolved only when read."""

    __slots__ = ("_path", "_raw", "_resolver")

    def __init__(self, resolver: _Resolver, path: KeyPath, raw: dict[str, Any]) -> None:
        self._resolver, self._path, self._raw = resolver, path, raw

    @property
    def key_path(self) -> str:
        return format_key_path(self._path)

    def __getitem__(self, key: str) -> Any:
        if key not in self._raw:
            raise KeyError(key)
        return self._resolver.value((*self._path, key))

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def __repr__(self) -> str:
        return repr(dict(self))


def _environment() -> LimitedSandbox:
    # keep_trailing_newline: a value renders exactly as written around its template tags.
    return LimitedSandbox(undefined=_Undefined, autoescape=False, keep_trailing_newline=True)


def _jinja_message(exc: Exception, filters: Iterable[str]) -> str:
    """Jinja's message on one line: str() of a compile error adds a `File "<introspection>"`
    line; an unknown filter gets a did-you-mean."""
    message = str(getattr(exc, "message", None) or exc).strip()
    unknown = re.match(r"No filter named '([^']*)'", message)
    if unknown:
        return f"unknown filter {unknown[1]!r}" + _did_you_mean(unknown[1], filters)
    return message.splitlines()[0] if message else type(exc).__name__


class _Resolver:
    """Renders templates on demand, memoizing results and tracking what is being rendered."""

    def __init__(self, tree: Mapping[str, Any], host: HostFacts) -> None:
        self._tree = tree
        self._host = host
        self._env = _environment()
        self._done: dict[KeyPath, Any] = {}
        self._active: list[KeyPath] = []  # keys being rendered, outermost first

    def resolve_node(self, path: KeyPath, node: Any) -> Any:
        if isinstance(node, dict):
            return {k: self.resolve_node((*path, k), v) for k, v in node.items()}
        if isinstance(node, list):
            return [self.resolve_node((*path, i), v) for i, v in enumerate(node)]
        return self._render(path) if is_template(node) else node

    def value(self, path: KeyPath) -> Any:
        """The value at `path` as a template reads it: strings rendered, tables as views."""
        node = self._raw(path)
        if isinstance(node, dict):
            return _TableView(self, path, node)
        if isinstance(node, list):
            return [self.value((*path, i)) for i in range(len(node))]
        return self._render(path) if is_template(node) else node

    def _raw(self, path: KeyPath, default: Any = missing) -> Any:
        node: Any = self._tree
        for part in path:
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                if default is missing:
                    raise
                return default
        return node

    def _guarded(self, path: KeyPath, compute: Callable[[], Any]) -> Any:
        """Compute the value at `path` once; re-entering it while computing is a cycle."""
        if path in self._done:
            return self._done[path]
        if path in self._active:
            cycle = [*self._active[self._active.index(path) :], path]
            raise _template_error(
                "template cycle: " + " -> ".join(format_key_path(p) for p in cycle),
                path=path,
                hint="break the loop: one of these values must not refer back",
            )
        self._active.append(path)
        try:
            result = compute()
        finally:
            self._active.pop()
        self._done[path] = result
        return result

    def _render(self, path: KeyPath) -> str:
        return self._guarded(path, partial(self._render_source, path, self._raw(path)))

    def _render_source(self, path: KeyPath, source: str) -> str:
        try:
            ast = self._env.parse(source)
        except TemplateSyntaxError as exc:
            raise _template_error(f"template syntax error: {exc.message}", path=path) from None
        scope = self._scope(path)
        token = _SCOPE_NAMES.set(tuple(scope))
        try:
            # Only the names the template mentions are computed (they may be templates too).
            names = meta.find_undeclared_variables(ast)
            context = {name: scope[name]() for name in names if name in scope}
            try:
                template = self._env.from_string(add_loop_guards(ast))
            except TemplateSyntaxError as exc:  # an unknown filter or test
                message = _jinja_message(exc, self._env.filters)
                raise _template_error(f"template error: {message}", path=path) from None
            result = template.render(context)
        except ConfigError:
            raise  # a nested template failed: its own error names its own key
        except TemplateLimitError as exc:
            raise _template_error(
                f"template too costly: {exc}",
                path=path,
                hint="templates are for small values: compute big ones outside airpods",
            ) from None
        except SecurityError as exc:
            raise _template_error(
                f"unsafe template: {exc}", path=path, hint="templates may only read config values"
            ) from None
        except UndefinedError as exc:
            raise _template_error(str(exc.message), path=path) from None
        except (JinjaError, ArithmeticError, TypeError, ValueError, LookupError) as exc:
            message = _jinja_message(exc, self._env.filters)
            raise _template_error(f"template failed: {message}", path=path) from None
        except RecursionError:
            raise _template_error("template failed: it recurses too deeply", path=path) from None
        finally:
            _SCOPE_NAMES.reset(token)
        if len(result) > MAX_VALUE:
            raise _template_error(
                f"template renders {len(result)} characters; the limit is {MAX_VALUE}",
                path=path,
                hint="templates are for small values: compute big ones outside airpods",
            )
        return result

    def _service_of(self, path: KeyPath) -> str | None:
        if len(path) >= 2 and path[0] == "services":
            name = path[1]
            if isinstance(name, str) and isinstance(self._raw(("services", name), None), dict):
                return name
        return None

    def _scope(self, path: KeyPath) -> dict[str, Callable[[], Any]]:
        """Names a template at `path` may use, each computed only when the template uses it."""
        scope: dict[str, Callable[[], Any]] = {}
        service = self._service_of(path)
        if service is not None:
            base: KeyPath = ("services", service)
            service_vars = self._raw((*base, "vars"), {})
            if isinstance(service_vars, dict):
                scope.update({k: partial(self.value, (*base, "vars", k)) for k in service_vars})
            scope.update({k: partial(self.value, (*base, k)) for k in self._raw(base)})
            scope["name"] = partial(str, service)
        for table in _GLOBAL_TABLES:
            if table in self._tree:
                scope[table] = partial(self.value, (table,))
        scope["host"] = partial(self._host_context, service)
        from airpods import kinds

        for list_name in kinds.backend_lists():
            # A pseudo key per list, so a cycle through it is reported like any other.
            scope[list_name] = partial(
                self._guarded, (list_name,), partial(self._backends, list_name)
            )
        return scope

    def _flag(self, path: KeyPath, default: bool) -> bool:
        """A boolean setting read the way validation will read it (templates render strings)."""
        value = self.value(path) if self._raw(path, None) is not None else default
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        return value if isinstance(value, bool) else default

    def _host_context(self, service: str | None) -> dict[str, Any]:
        if service is None:
            return self._host.as_context()
        base: KeyPath = ("services", service, "gpu")
        use_gpu = self._flag((*base, "enabled"), True) and not self._flag(
            (*base, "force_cpu"), False
        )
        return self._host.for_service(use_gpu=use_gpu).as_context()

    def _backends(self, list_name: str) -> list[dict[str, str]]:
        """`openai_backends` / `ollama_backends`: every enabled service of a kind that joins the
        list, as that kind describes it (airpods.kinds)."""
        from airpods import kinds

        joining = {kind.name: kind for kind in kinds.backend_lists().get(list_name, [])}
        services = self._raw(("services",), {})
        backends: list[dict[str, str]] = []
        for name, svc in services.items() if isinstance(services, dict) else ():
            if not isinstance(svc, dict) or "kind" not in svc:
                continue  # the default kind joins no list
            base: KeyPath = ("services", name)
            kind = joining.get(self.value((*base, "kind")))
            if kind is None or not self._flag((*base, "enabled"), True):
                continue
            try:
                backend = kind.backend(name, partial(self._read_in, base))
            except WiringError as exc:
                raise _template_error(
                    f"a {kind.name} {exc.message}", path=(*base, *exc.path)
                ) from None
            backends.append({"name": backend.name, "url": backend.url,
                             "api_key": backend.api_key, "provider": backend.provider})
        return backends

    def _read_in(self, base: KeyPath, path: KeyPath, default: Any) -> Any:
        """A resolved value under `base`, or `default` when the key is absent."""
        full = (*base, *path)
        return default if self._raw(full, _ABSENT) is _ABSENT else self.value(full)
