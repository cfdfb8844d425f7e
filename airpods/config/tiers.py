"""Capability tiers that fit this machine: the catalogue (config/models.toml, extended by a user
file), the memory budget, and the choices built on them (`models recommend`, `model_source =
"auto"`, `models pull ORG/REPO` without a quant).

The budget is the fit check's (airpods.fit): VRAM less 10% when the model goes on a GPU
whose memory is known, else total RAM less 20%. A tier's estimate is its file size plus the f16
K/V cache at ctx (layers x kv_heads x head_dim x 2 (K and V) x 2 bytes a token), as for a
downloaded model, so `recommend`, `start` and `models info` agree.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from airpods.errors import ConfigError
from airpods.fit import KV_BYTES, LLAMA_DEFAULT_CTX, RAM_HEADROOM, VRAM_HEADROOM, gb
from airpods.paths import builtin_catalogue_path, user_catalogue_path
from airpods.record import record

if TYPE_CHECKING:
    from airpods.host import HostFacts

TIER_KEYS = {"repo": str, "file": str, "quant": str, "parameters": int, "size_bytes": int,
             "layers": int, "kv_heads": int, "head_dim": int, "cpu_min_cores": int,
             "licence": str, "commercial_use": bool}
# Keys a tier may leave out: a user tier without a licence is shown as "not stated".
OPTIONAL_KEYS = {"cpu_min_cores", "licence", "commercial_use"}
NOT_STATED = "not stated"
_KIND_WORDS = {int: "a positive integer", bool: "true or false"}
# Below about 3B parameters a model is likely to call tools unreliably: the threshold,
# borne out in public reports, e.g. modelcontextprotocol/modelcontextprotocol#2470 (qwen2.5
# 1.5B picks the right tool 50% of the time among 80, a 9B model 80%) and
# huggingface/smolagents#71 (Llama 3.2 1B/3B fail to call the tool in its tool-calling example).
TOOL_CALLING_MIN_PARAMS = 3_000_000_000
# Without a header to read, a quant picked from the hub's listing is estimated as its size plus
# this share for the K/V cache and buffers (Qwen2.5-7B Q4_K_M at ctx 4096: 0.23 GB over 4.7 GB).
LISTING_OVERHEAD = 0.10


@record
class Tier:
    name: str
    repo: str
    file: str
    quant: str
    parameters: int
    size_bytes: int
    layers: int
    kv_heads: int
    head_dim: int
    cpu_min_cores: int = 1
    licence: str = NOT_STATED
    # False: the licence forbids commercial use, so `auto` never picks the tier (it is still
    # listed by `models recommend`, and `models pull` takes it when asked by name).
    commercial_use: bool | None = None

    def kv_bytes(self, ctx: int) -> int:
        return self.layers * self.kv_heads * self.head_dim * 2 * KV_BYTES * ctx

    def estimate(self, ctx: int) -> int:
        return self.size_bytes + self.kv_bytes(ctx)

    @property
    def source(self) -> str:
        return f"{self.repo}/{self.file}"


@record
class Budget:
    total_bytes: int
    usable_bytes: int
    where: str  # "VRAM" | "RAM"
    headroom: float

    def describe(self) -> str:
        return (f"{gb(self.usable_bytes)} usable ({self.where} {gb(self.total_bytes)} less "
                f"{self.headroom:.0%} headroom)")


def budget(host: HostFacts, *, on_gpu: bool | None = None) -> Budget:
    """What a model may use on `host`: VRAM when it goes on a GPU whose memory is known."""
    gpu = host.accelerator != "cpu" if on_gpu is None else on_gpu
    if gpu and host.vram_bytes:
        usable = int(host.vram_bytes * (1 - VRAM_HEADROOM))
        return Budget(host.vram_bytes, usable, "VRAM", VRAM_HEADROOM)
    usable = int(host.memory_bytes * (1 - RAM_HEADROOM))
    return Budget(host.memory_bytes, usable, "RAM", RAM_HEADROOM)


# --- the catalogue ----------------------------------------------------------------------------


def _read_toml(path: Path) -> dict[str, Any] | None:
    """The catalogue at `path`, None when there is none. Read as config files are (a FIFO, a
    device or a directory there is refused in one line, never opened for a blocking read)."""
    from airpods.config.files import read_config_bytes

    try:
        data = read_config_bytes(path)
    except ConfigError as exc:
        raise ConfigError(exc.message, file=str(path),
                          hint="make it a regular TOML file, or remove it") from None
    if data is None:
        return None
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomlkit

        return tomlkit.parse(data.decode()).unwrap()
    return tomllib.loads(data.decode())


def _tiers_in(path: Path) -> dict[str, Tier]:
    try:
        data = _read_toml(path)
    except ConfigError:
        raise
    except Exception as exc:  # tomllib / tomlkit parse errors carry the line in their text
        raise ConfigError(f"not valid TOML: {str(exc).splitlines()[0]}", file=str(path),
                          hint="fix the file or remove it") from None
    if data is None:
        return {}
    tiers = data.get("tiers", {})
    unknown = sorted(set(data) - {"tiers"})
    if unknown or not isinstance(tiers, dict):
        raise ConfigError(f"unknown table {unknown[0] if unknown else 'tiers'!r}",
                          file=str(path), hint="a catalogue holds only [tiers.NAME] tables")
    return {name: _tier(path, name, body) for name, body in tiers.items()}


def _tier(path: Path, name: str, body: Any) -> Tier:
    where = f"tiers.{name}"
    if not isinstance(body, dict):
        raise ConfigError("must be a table", file=str(path), key_path=where)
    for key, value in body.items():
        want = TIER_KEYS.get(key)
        if want is None:
            raise ConfigError(f"unknown key {key!r}", file=str(path), key_path=f"{where}.{key}",
                              hint=f"known keys: {', '.join(TIER_KEYS)}")
        ok = isinstance(value, want) and (want is bool or not isinstance(value, bool))
        if not ok or (want is int and value <= 0) or (want is str and not value.strip()):
            kind = _KIND_WORDS.get(want, "a non-empty string")
            raise ConfigError(f"must be {kind}, not {value!r}", file=str(path),
                              key_path=f"{where}.{key}")
    missing = [k for k in TIER_KEYS if k not in body and k not in OPTIONAL_KEYS]
    if missing:
        raise ConfigError(f"missing {', '.join(missing)}", file=str(path), key_path=where)
    if not body["file"].endswith(".gguf") or "/" in body["file"]:
        raise ConfigError(f"{body['file']!r} is not a GGUF file name in the repository root",
                          file=str(path), key_path=f"{where}.file")
    return Tier(name=name, **body)


def load_catalogue(user: Path | None = None) -> list[Tier]:
    """The built-in tiers, with the user file's added or replaced by name; smallest first."""
    tiers = _tiers_in(builtin_catalogue_path())
    user = user_catalogue_path() if user is None else user
    tiers.update(_tiers_in(user))  # none there: no tiers
    return sorted(tiers.values(), key=lambda t: (t.estimate(LLAMA_DEFAULT_CTX), t.name))


# --- choices ----------------------------------------------------------------------------------


@record
class Fitting:
    tier: Tier
    estimate_bytes: int
    headroom_bytes: int
    fast_enough: bool  # on a GPU, or enough physical cores for the tier on the CPU


def fitting(host: HostFacts, ctx: int, tiers: list[Tier], *,
            on_gpu: bool | None = None) -> list[Fitting]:
    """The tiers whose estimate at `ctx` fits the budget, smallest first."""
    room = budget(host, on_gpu=on_gpu)
    gpu = room.where == "VRAM"
    out = []
    for tier in tiers:
        need = tier.estimate(ctx)
        if need <= room.usable_bytes:
            fast = gpu or host.physical_cores >= tier.cpu_min_cores
            out.append(Fitting(tier, need, room.usable_bytes - need, fast))
    return out


def auto_pick(host: HostFacts, ctx: int, tiers: list[Tier], *,
              on_gpu: bool | None = None) -> Fitting | None:
    """The largest fitting tier that is fast enough here; else the smallest that fits. Tiers
    whose licence forbids commercial use are skipped (`licence_skipped` names them)."""
    allowed = [t for t in tiers if t.commercial_use is not False]
    fits = fitting(host, ctx, allowed, on_gpu=on_gpu)
    fast = [f for f in fits if f.fast_enough]
    if fast:
        return fast[-1]
    return fits[0] if fits else None


def with_auto_model(host: HostFacts) -> HostFacts:
    """`host` with `auto_model` set: the auto tier's file at llama-server's default context; ""
    when none fits or the catalogue is unreadable."""
    from airpods.errors import AirpodsError
    from airpods.record import replace

    try:
        pick = auto_pick(host, LLAMA_DEFAULT_CTX, load_catalogue())
    except AirpodsError:
        return host  # a broken user catalogue is reported by `models recommend` and `doctor`
    return replace(host, auto_model=pick.tier.file if pick else "")


def licence_skipped(host: HostFacts, ctx: int, tiers: list[Tier], pick: Fitting | None, *,
                    on_gpu: bool | None = None) -> list[Tier]:
    """The non-commercial tiers `auto` passed over: they fit, are fast enough here and are
    larger than its pick (the start line says so)."""
    floor = pick.estimate_bytes if pick else -1
    return [f.tier for f in fitting(host, ctx, tiers, on_gpu=on_gpu)
            if f.tier.commercial_use is False and f.fast_enough and f.estimate_bytes > floor]


def tier_for_file(name: str, tiers: list[Tier]) -> Tier | None:
    return next((t for t in tiers if t.file == name), None)


@record
class QuantChoice:
    path: str | None  # None: nothing fits
    why: str


def pick_fitting_quant(repo: str, quants: dict[str, tuple[str, int]], room: Budget) -> QuantChoice:
    """From {quant: (first file, total bytes of its parts)}: the largest whose size plus
    LISTING_OVERHEAD fits `room`, and one line saying why."""
    ranked = sorted(quants.items(), key=lambda kv: kv[1][1], reverse=True)
    for quant, (path, size) in ranked:
        need = int(size * (1 + LISTING_OVERHEAD))
        if need <= room.usable_bytes:
            bigger = [q for q, (_, s) in ranked if s > size]
            skipped = f"; {', '.join(bigger)} would not fit" if bigger else ""
            return QuantChoice(path, (
                f"{repo}: picked {quant} ({gb(size)}, about {gb(need)} with K/V cache and "
                f"buffers), the largest quant that fits {room.describe()}{skipped}"))
    smallest = ranked[-1] if ranked else None
    detail = (f"the smallest, {smallest[0]}, needs about "
              f"{gb(int(smallest[1][1] * (1 + LISTING_OVERHEAD)))}") if smallest else "none listed"
    return QuantChoice(None, f"{repo}: no quant fits {room.describe()}: {detail}")


def tool_calling_warning(parameters: int | None) -> str | None:
    """A line when a model is likely too small to call tools reliably, else None."""
    if not parameters or parameters >= TOOL_CALLING_MIN_PARAMS * 0.95:  # "3B" models: 3.09B..
        return None
    return (f"{parameters / 1e9:.1f}B parameters: likely too small to call tools reliably "
            f"(under about {TOOL_CALLING_MIN_PARAMS / 1e9:.0f}B); use a larger tier for agents "
            "and function calling (`airpods models recommend`)")
