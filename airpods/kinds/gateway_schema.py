"""The gateway kind's own config keys: remotes, fallbacks, clients (pydantic v2).

    [services.gateway.remotes.homelab]
    base_url = "http://192.168.1.20:11434/v1"
    api_key_env = "HOMELAB_KEY"          # the NAME of a variable; never the key itself
    models = ["llama3.1:8b"]
    price_in = 0.15                       # per million tokens (optional)

    [services.gateway.fallbacks]
    "qwen2.5-0.5b-instruct-q4_k_m" = ["llama3.1:8b"]

    [services.gateway.clients.laptop]     # a key generated once, revoked by removing the table

    [services.gateway.escalation]         # an `auto` model: LiteLLM's complexity router
    local = "qwen2.5-0.5b-instruct-q4_k_m"   # SIMPLE and MEDIUM requests
    frontier = "gpt-4o"                   # COMPLEX and REASONING requests (a remote's model)
    overflow = "gpt-4o"                   # prompts longer than the local context (optional)

The shared schema (airpods.config.schema) knows none of them: the kind adds them to the service
model (`OwnsKeys.config_tables`, assembled by airpods.config.kind_checks.config_model), so keys,
defaults and messages are those of any schema key. What needs every service at once (unknown or
duplicate model names, cycles, private models with fallbacks) is checked by the gateway kind
(`airpods.kinds.gateway.config_problems_in`). Imported only to validate a configuration: kind
modules stay free of pydantic on the cache-hit path.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

_ENV_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_URL_BAD_CHARS = re.compile(r"[\x00-\x20\x7f]")
# A client's name becomes a variable name (CLIENT_<NAME>) and a label in usage records.
CLIENT_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")
_REMOTE_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,47}")
# Model names as clients send them: Ollama's "llama3.1:8b", a cloud's "gpt-4o-mini".
_MODEL_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/@+-]{0,127}")


# Names a remote's `api_key_env` may not take (compared case-insensitively): airpods' own
# secrets and settings, and variables a process's behaviour depends on. The key would be read
# from a variable that is not the remote's key (PATH), or could be mistaken for airpods' own.
RESERVED_PREFIXES = ("AIRPODS_", "LITELLM_", "CLIENT_", "LD_", "DYLD_", "PYTHON", "LC_", "XDG_")
RESERVED_NAMES = frozenset({
    "LLAMA_API_KEY", "WEBUI_SECRET_KEY",  # keys airpods generates (generated_secrets)
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "PWD", "TMPDIR", "TERM", "LANG", "LANGUAGE",
    "TZ", "IFS", "ENV", "BASH_ENV", "HOSTNAME", "SSL_CERT_FILE", "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
    "ALL_PROXY", "CONTAINER_HOST",
})


def reserved_variable(name: str) -> bool:
    """True for a name in RESERVED_NAMES or starting with one of RESERVED_PREFIXES."""
    upper = name.upper()
    return upper in RESERVED_NAMES or upper.startswith(RESERVED_PREFIXES)


def _client_name(v: str) -> str:
    if not CLIENT_NAME_RE.fullmatch(v):
        raise ValueError(
            f"{v!r} is not a safe client name (a lowercase letter, then lowercase letters, "
            "digits or '_', at most 32)"
        )
    return v


def _remote_name(v: str) -> str:
    if not _REMOTE_NAME_RE.fullmatch(v):
        raise ValueError(f"{v!r} is not a valid remote name (lowercase letters, digits, '_-')")
    return v


def _model_name(v: str) -> str:
    if not _MODEL_NAME_RE.fullmatch(v):
        raise ValueError(f"{v!r} is not a valid model name (letters, digits, '_.:/@+-')")
    return v


ClientName = Annotated[str, AfterValidator(_client_name)]
RemoteName = Annotated[str, AfterValidator(_remote_name)]
ModelName = Annotated[str, AfterValidator(_model_name)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RemoteSpec(_Strict):
    """An OpenAI-compatible server elsewhere: a homelab Ollama, a cloud API."""

    base_url: str
    api_key_env: str | None = None
    models: list[ModelName] = Field(min_length=1)
    # strict: a number, never "0.5" or true read as one. Neither set: the cost of its answers
    # is unknown (`airpods usage` says so); 0 says it is free (a homelab server).
    price_in: float | None = Field(default=None, ge=0, allow_inf_nan=False, strict=True)
    price_out: float | None = Field(default=None, ge=0, allow_inf_nan=False, strict=True)

    @property
    def priced(self) -> bool:
        return self.price_in is not None or self.price_out is not None
    # A remote that hangs gets this long, then the client gets a clear timeout error.
    timeout_s: float = Field(default=120, gt=0, le=3600, allow_inf_nan=False, strict=True)

    @model_validator(mode="before")
    @classmethod
    def _no_literal_key(cls, data: Any) -> Any:
        if isinstance(data, dict) and "private_ok" in data:
            raise ValueError(
                "`private_ok` applies only to peers ([services.<gateway>.peers.NAME]): a remote "
                "never gets private requests; remove it, or make this server a peer"
            )
        return _no_literal_key(data)

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        return _checked_url(v, "http://192.168.1.20:11434/v1", "base_url")

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        return _key_variable(v, "remote", "HOMELAB_KEY")

    @field_validator("models")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        from airpods.values import listed_once

        return listed_once(v, "model ")


def _no_literal_key(data: Any) -> Any:
    if isinstance(data, dict):
        for key in ("api_key", "key", "token", "apikey"):
            if key in data:
                raise ValueError(
                    f"`{key}`: a literal key does not belong in the config file; put it in "
                    "an environment variable and set api_key_env = \"VARIABLE_NAME\""
                )
    return data


def _checked_url(v: str, example_url: str, key: str) -> str:
    from airpods.masking import mask_url

    example = f"(example: {example_url})"
    shown = mask_url(v)  # whichever check fails, a password in it is never printed
    # urlsplit drops tabs and newlines silently: such a URL would reach LiteLLM as written.
    if _URL_BAD_CHARS.search(v):
        raise ValueError(f"{shown!r} holds a space or control character {example}")
    parts = urlsplit(v)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{shown!r} is not an http(s) URL {example}")
    try:
        port = parts.port  # raises on a port outside 0-65535 or not a number
    except ValueError:
        port = 0
    if port == 0:
        raise ValueError(f"{shown!r} has no valid port (1-65535) {example}")
    if parts.username or parts.password:
        raise ValueError(f"a {key} must not carry a user or password; use api_key_env")
    if parts.query or parts.fragment or v.endswith(("?", "#")):
        raise ValueError(
            f"{shown!r} has a query or fragment: LiteLLM appends paths such as "
            f"/chat/completions to {key} {example}"
        )
    return v.rstrip("/")


def _key_variable(v: str | None, what: str, example: str) -> str | None:
    if v is not None and not _ENV_RE.fullmatch(v):
        raise ValueError(
            f"{v[:6]!r}... is not an environment variable name: api_key_env names the "
            "variable that holds the key (example: OPENAI_API_KEY), never the key itself"
        )
    if v is not None and reserved_variable(v):
        raise ValueError(
            f"{v} is reserved (airpods' own keys, AIRPODS_*/LITELLM_*/CLIENT_*, or a "
            "variable processes depend on, such as PATH or LD_*): name your own variable "
            f"that holds this {what}'s key (example: {example})"
        )
    return v


# How LiteLLM picks among several deployments of one model (router_settings.routing_strategy).
RoutingStrategy = Literal[
    "simple-shuffle", "least-busy", "latency-based-routing", "usage-based-routing-v2",
    "cost-based-routing",
]


class PeerSpec(_Strict):
    """Another machine's airpods gateway: its models join this gateway's as more deployments.

    `url` is the peer's gateway base URL (http://192.168.1.30:4000); `private_ok = true` lets
    private requests go to it (your own machine on your LAN); `weight` weighs it in
    simple-shuffle routing."""

    url: str
    api_key_env: str | None = None
    weight: int = Field(default=1, ge=1, le=1000, strict=True)
    private_ok: bool = Field(default=False, strict=True)

    @model_validator(mode="before")
    @classmethod
    def _no_literal_key(cls, data: Any) -> Any:
        return _no_literal_key(data)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        v = _checked_url(v, "http://192.168.1.30:4000", "peer url")
        return v[: -len("/v1")] if v.endswith("/v1") else v

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        return _key_variable(v, "peer", "GPUBOX_KEY")


class ClientSpec(_Strict):
    """A named client key: generated once (kept 0600), revoked by removing the table."""

    key: str | None = None


def client_variable(name: str) -> str:
    """Where a client's generated key is kept: CLIENT_<NAME> (names are safe identifiers)."""
    return f"CLIENT_{name.upper()}"


# LiteLLM's complexity router (router_strategy/complexity_router/config.py, 1.106.12): the
# three `tier_boundaries` keys, in the order the score crosses them.
BOUNDARY_KEYS = ("simple_medium", "medium_complex", "complex_reasoning")
TIERS = ("SIMPLE", "MEDIUM", "COMPLEX", "REASONING")
_Keywords = list[Annotated[str, Field(min_length=1, max_length=100)]]


class TierBoundaries(_Strict):
    """Scores (0-1) where one tier ends and the next begins; LiteLLM's defaults when unset."""

    simple_medium: float | None = Field(default=None, gt=0, lt=1, allow_inf_nan=False,
                                        strict=True)
    medium_complex: float | None = Field(default=None, gt=0, lt=1, allow_inf_nan=False,
                                         strict=True)
    complex_reasoning: float | None = Field(default=None, gt=0, lt=1, allow_inf_nan=False,
                                            strict=True)


class KeywordTierRule(_Strict):
    """Any of `keywords` in a request sends it to `tier`, whatever its score."""

    keywords: _Keywords = Field(min_length=1, max_length=64)
    tier: str

    @field_validator("tier")
    @classmethod
    def _tier(cls, v: str) -> str:
        if v not in TIERS:
            raise ValueError(f"{v!r} is not a tier (one of {', '.join(TIERS)})")
        return v


class EscalationSpec(_Strict):
    """An `auto` model: each request classified locally by LiteLLM's rule-based complexity
    router; SIMPLE/MEDIUM to `local`, COMPLEX/REASONING to `frontier`."""

    local: ModelName
    frontier: ModelName
    name: ModelName = "auto"
    # A remote model for prompts longer than the local server's context (context_window_fallbacks).
    overflow: ModelName | None = None
    tier_boundaries: TierBoundaries | None = None
    code_keywords: _Keywords | None = None
    reasoning_keywords: _Keywords | None = None
    technical_keywords: _Keywords | None = None
    simple_keywords: _Keywords | None = None
    keyword_tier_rules: list[KeywordTierRule] | None = Field(default=None, max_length=32)

    @model_validator(mode="after")
    def _ascending(self) -> EscalationSpec:
        from airpods.kinds.gateway_escalation import boundaries

        values = list(boundaries(self).values())
        if values != sorted(values) or len(set(values)) != len(values):
            raise ValueError(
                "tier_boundaries must rise: simple_medium < medium_complex < complex_reasoning "
                f"(with LiteLLM's defaults for those unset, they are {values})")
        return self


# How LiteLLM picks among several deployments of one model name (`replicas`, peers):
# router_settings.routing_strategy, passed through as written.
RoutingStrategy = Literal["simple-shuffle", "least-busy", "latency-based-routing",
                          "usage-based-routing-v2", "cost-based-routing"]


def config_tables() -> dict[str, Any]:
    """The keys the gateway kind adds to a service, as pydantic field definitions."""
    return {
        # Remote servers, local -> remote fallbacks in order, and named client keys.
        "remotes": (dict[RemoteName, RemoteSpec], Field(default_factory=dict)),
        "fallbacks": (dict[ModelName, list[ModelName]], Field(default_factory=dict)),
        "clients": (dict[ClientName, ClientSpec], Field(default_factory=dict)),
        # An `auto` model that routes each request by difficulty (gateway_escalation.py).
        "escalation": (EscalationSpec | None, Field(default=None)),
        # Other machines' gateways (their models become more deployments of the same names),
        # and how LiteLLM picks among a model's deployments.
        "peers": (dict[RemoteName, PeerSpec], Field(default_factory=dict)),
        "routing_strategy": (RoutingStrategy, Field(default="least-busy")),
    }
