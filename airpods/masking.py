"""Which values are secret, and hiding them: by name and by value (see airpods.secrets).

Light on purpose (no pydantic, no jinja, no file access): `status`, `start --dry-run`, `config
show` and the CLI's last-resort error handler use it.

**Which values are secret.** An env value whose name contains KEY, SECRET, TOKEN, PASSWORD or
PASSWD; one the service lists in `generated_secrets` (whatever its name); the value after a
command-line flag whose name matches the same words (`--api-key X`, `--hf-token=X`); and the
value of a secret handed to a container as a file (`ContainerSpec.secret_files`).

**Masking** goes by name (those values print as "****") and by value: a secret that a template
copied into another variable (`AUTHORIZATION = "Bearer {{ ...LLAMA_API_KEY }}"`) is replaced
wherever it appears in printed text. Values shorter than 8 characters are not masked by value
(masking every "1" would garble output, and such a value protects nothing anyway).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airpods.spec import ContainerSpec

# Env keys (and flag names) whose values are never shown (dry-run, status, config show).
SECRET_KEY_RE = re.compile(r"(KEY|SECRET|TOKEN|PASSWORD|PASSWD)", re.IGNORECASE)
MASK = "****"
MIN_MASKED_LEN = 8  # shorter values are masked by name only, never by value

# Parts of a list-valued secret (`--api-key a,b`, OPENAI_API_KEYS "a;b") are secret one by one:
# a template may copy one of them.
_PARTS_RE = re.compile(r"[,;\s]+")


# --- which values are secret ------------------------------------------------------------------


def is_secret_key(key: str, extra: Collection[str] = ()) -> bool:
    """True for a name matching SECRET_KEY_RE, or one of `extra` (a service's generated_secrets)."""
    return key in extra or SECRET_KEY_RE.search(key) is not None


def secret_env_keys(env: Iterable[str], generated: Iterable[Any] = ()) -> frozenset[str]:
    """The names in `env` whose values are secret, given the service's `generated_secrets`."""
    extra = frozenset(name for name in generated if isinstance(name, str))
    return frozenset(key for key in env if is_secret_key(key, extra))


def _secret_flag(item: str) -> bool:
    """`--api-key`, `--hf-token`, `-hf-token`: a flag whose name says its value is secret.

    A `...-file` flag (`--api-key-file`) names where the secret is, not the secret.
    """
    name = item.lstrip("-")
    return (
        item.startswith("-")
        and SECRET_KEY_RE.search(name) is not None
        and not name.endswith(("-file", "_file"))
    )


def _argv_secrets(argv: Iterable[str]) -> list[str]:
    """The values of secret flags in `argv` (the item after `--api-key`, or after `--k=`)."""
    found: list[str] = []
    take_next = False
    for item in argv:
        if take_next:
            found.append(item)
            take_next = False
            continue
        flag, eq, value = item.partition("=")
        if eq and _secret_flag(flag):
            found.append(value)
        else:
            take_next = not eq and _secret_flag(item)
    return found


def _with_parts(values: Iterable[Any]) -> set[str]:
    out: set[str] = set()
    for value in values:
        if not isinstance(value, str):
            continue
        for candidate in (value, *_PARTS_RE.split(value)):
            if len(candidate) >= MIN_MASKED_LEN:
                out.add(candidate)
    return out


def secret_values(*specs: ContainerSpec) -> frozenset[str]:
    """Every secret value the specs hold, for masking by value (see mask_text)."""
    found: list[str] = []
    for spec in specs:
        found.extend(spec.env[key] for key in spec.secret_env if key in spec.env)
        found.extend(item.value for item in spec.secret_files)
        found.extend(_argv_secrets(spec.command))
        found.extend(_argv_secrets(spec.entrypoint or ()))
    values = frozenset(_with_parts(found))
    remember(values)
    return values


def tree_secret_values(tree: Mapping[str, Any]) -> frozenset[str]:
    """Every secret value in a resolved config tree (`config show`'s data)."""
    found: list[Any] = []
    services = tree.get("services")
    for svc in services.values() if isinstance(services, Mapping) else ():
        if not isinstance(svc, Mapping):
            continue
        env = svc.get("env")
        if isinstance(env, Mapping):
            generated = svc.get("generated_secrets")
            keys = secret_env_keys(env, generated if isinstance(generated, list) else ())
            found.extend(env[key] for key in keys)
        args = svc.get("command_args")
        if isinstance(args, Mapping):
            for key, value in args.items():
                if SECRET_KEY_RE.search(str(key)):
                    found.extend(value if isinstance(value, list) else [value])
        clients = svc.get("clients")  # a gateway's named client keys
        for client in clients.values() if isinstance(clients, Mapping) else ():
            if isinstance(client, Mapping) and isinstance(client.get("key"), str):
                found.append(client["key"])
    values = frozenset(_with_parts(found))
    remember(values)
    return values


# Every secret value this process has read, generated or masked. Error messages are printed by
# the CLI's last-resort handler, far from any spec or config: it masks with these.
_SEEN: set[str] = set()


def remember(values: Iterable[str]) -> None:
    _SEEN.update(v for v in values if len(v) >= MIN_MASKED_LEN)


def seen_values() -> frozenset[str]:
    return frozenset(_SEEN)


# --- masking ----------------------------------------------------------------------------------


def mask_text(text: str, values: Collection[str]) -> str:
    """`text` with every occurrence of each value in `values` replaced by MASK."""
    if not text or not values:
        return text
    # Longest first: a value that contains another is masked whole.
    for value in sorted(values, key=len, reverse=True):
        if value in text:
            text = text.replace(value, MASK)
    return text


def mask_data(data: Any, values: Collection[str]) -> Any:
    """A copy of JSON-like `data` (dicts, lists, tuples) with `values` masked in its strings."""
    if not values:
        return data
    if isinstance(data, str):
        return mask_text(data, values)
    if isinstance(data, Mapping):
        return {key: mask_data(value, values) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [mask_data(value, values) for value in data]
    return data


def _shown(value: Any) -> bool:
    # An empty (or absent) value hides nothing: showing it says "no secret set".
    return value is not None and value != ""


def mask_env(env: Mapping[str, Any], secret_keys: Collection[str] = frozenset()) -> dict[str, Any]:
    """A copy of `env` with the (non-empty) values of secret keys replaced by MASK."""
    return {k: (MASK if is_secret_key(k, secret_keys) and _shown(v) else v) for k, v in env.items()}


def mask_tree(tree: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a resolved config tree with every secret value masked, by name and by value.

    By name: `env` values of secret names (each service's `generated_secrets` are secret
    whatever their names), and `command_args` values of secret flags (`api_key`). By value:
    any string anywhere in the tree that contains one of those values.
    """
    values = tree_secret_values(tree)
    masked = dict(tree)
    services = tree.get("services")
    if isinstance(services, Mapping):
        masked["services"] = {
            name: _mask_service(svc) if isinstance(svc, Mapping) else svc
            for name, svc in services.items()
        }
    return mask_data(masked, values)


def _mask_service(svc: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(svc)
    env = svc.get("env")
    if isinstance(env, Mapping):
        generated = svc.get("generated_secrets")
        extra = secret_env_keys(env, generated if isinstance(generated, list) else ())
        out["env"] = mask_env(env, extra)
    args = svc.get("command_args")
    if isinstance(args, Mapping):
        out["command_args"] = {
            k: _mask_arg(v) if SECRET_KEY_RE.search(k) else v for k, v in args.items()
        }
    return out


def _mask_arg(value: Any) -> Any:
    if isinstance(value, list):
        return [_mask_arg(v) for v in value]
    # A boolean is a switch (`--flag` or nothing), not a value.
    return MASK if _shown(value) and not isinstance(value, bool) else value


def mask_ini(text: str) -> str:
    """`text` (an INI file, e.g. a router's presets) with the value of every key whose name
    says it is secret (`api-key = ...`, `hf-token = ...`) masked, however short the value."""
    out = []
    for line in text.splitlines(keepends=True):
        key, eq, value = line.partition("=")
        if eq and value.strip() and _secret_flag("--" + key.strip()):
            line = f"{key}{eq} {MASK}" + ("\n" if line.endswith("\n") else "")
        out.append(line)
    return "".join(out)


def mask_argv(argv: Iterable[str]) -> list[str]:
    """A copy of `argv` with the values of secret flags masked: `--api-key ****`, `--k=****`.

    The item after a secret flag is masked whatever it looks like (a value may start with
    '-'): a boolean flag with a secret-sounding name costs one hidden item, never a leak.
    """
    out: list[str] = []
    mask_next = False
    for item in argv:
        if mask_next:
            out.append(MASK if item != "" else item)
            mask_next = False
            continue
        flag, eq, value = item.partition("=")
        if eq and _secret_flag(flag):
            out.append(f"{flag}={MASK}" if value else item)
        else:
            out.append(item)
            mask_next = not eq and _secret_flag(item)
    return out


# --- text from elsewhere, for a terminal ---------------------------------------------------


def printable(text: str) -> str:
    """`text` with every non-printable character (ESC, BEL, CR, LF, NUL, DEL, C1 controls, bidi
    overrides...) written as a Python escape (`\\x1b`, `\\r`, `\\u202e`): for human output
    that shows recorded or remote text (usage records, a server's model ids, a hub's repo
    names, a file's metadata), so a terminal never acts on it and `\\r\\n` cannot forge a row.
    `--json` output is never passed through this: it stays exact (JSON escapes on its own)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in text)


# --- URLs: userinfo and secret-looking query values ---------------------------------------------

# A query parameter whose name says its value is a credential (`api_key`, `token`, `sig`, ...).
_SECRET_PARAM_RE = re.compile(r"(KEY|SECRET|TOKEN|PASS|PWD|AUTH|SIG|CREDENTIAL|SESSION)",
                              re.IGNORECASE)
_URL_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def mask_url(url: str) -> str:
    """`url` with its userinfo (`user:password@`) and the values of secret-looking query
    parameters (`?api_key=...`) replaced by MASK; anything else as written, even a URL that
    fails every other check (control characters included: this runs before any of them)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    netloc, tail = rest[:cut], rest[cut:]
    if "@" in netloc:
        netloc = MASK + "@" + netloc.rpartition("@")[2]
    path, q, query = tail.partition("?")
    if q:
        query, hashmark, fragment = query.partition("#")
        params = re.split(r"([&;])", query)
        query = "".join(_mask_param(p) for p in params) + hashmark + fragment
    return f"{scheme}{sep}{netloc}{path}{q}{query}"


def _mask_param(param: str) -> str:
    name, eq, value = param.partition("=")
    return f"{name}={MASK}" if eq and value and _SECRET_PARAM_RE.search(name) else param


def mask_urls_in(text: str) -> str:
    """`text` (a message) with mask_url applied to every URL in it."""
    return _URL_RE.sub(lambda m: mask_url(m.group(0)), text) if "://" in text else text


def key_problem(value: str) -> str | None:
    """Why `value` cannot be a key (None if it can): keys are one printable word."""
    if any(ch.isspace() for ch in value) or not value.isprintable():
        return "holds whitespace, a newline or a control character"
    return None
