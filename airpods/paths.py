"""Where the configuration lives, and which environment variables override it.

Kept apart from the loader so that code which only needs to know *where* (the resolved-services
cache key, `airpods config path`) imports no pydantic, jinja2 or tomlkit.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import airpods

APP = "airpods"
# which -> (the XDG variable, its default under HOME), as platformdirs reads them on Linux.
_XDG = {
    "config": ("XDG_CONFIG_HOME", ".config"),
    "data": ("XDG_DATA_HOME", ".local/share"),
    "cache": ("XDG_CACHE_HOME", ".cache"),
}

# Environment variable -> the key path it overrides (a KeyPath: table keys, list indexes).
ENV_OVERRIDES: dict[str, tuple[str | int, ...]] = {
    "AIRPODS_ACCELERATOR": ("runtime", "accelerator"),
}


def default_config_path() -> Path:
    """The built-in defaults: packaged in the wheel, else the source checkout's copy."""
    package = Path(airpods.__file__).parent
    packaged = package / "defaults" / "airpods.toml"
    return packaged if packaged.exists() else package.parent / "config" / "airpods.toml"


def user_dir(which: str) -> Path:
    """airpods' own "config", "data" or "cache" directory: platformdirs' answer.

    On Linux with an absolute XDG variable or HOME (the usual case) it is worked out here, as
    platformdirs does: importing platformdirs (it loads tempfile) costs every `status` a few ms.
    tests/unit/test_paths.py holds both answers equal.
    """
    variable, default = _XDG[which]
    if sys.platform.startswith("linux"):
        value, home = os.environ.get(variable, ""), os.environ.get("HOME", "")
        if os.path.isabs(value):
            return Path(value) / APP
        if os.path.isabs(home):
            return Path(home) / default / APP
    import platformdirs

    return Path(getattr(platformdirs, f"user_{which}_path")(APP))


def user_config_path() -> Path:
    """The default user file (honours XDG_CONFIG_HOME on Linux)."""
    return user_dir("config") / "config.toml"


CATALOGUE_FILE = "models.toml"


def builtin_catalogue_path() -> Path:
    """The model catalogue (airpods.config.tiers): packaged, else the checkout's copy."""
    package = Path(airpods.__file__).parent
    packaged = package / "defaults" / CATALOGUE_FILE
    return packaged if packaged.exists() else package.parent / "config" / CATALOGUE_FILE


# The user config file this process was told to use (`--config` / AIRPODS_CONFIG), set by the
# CLI's entry on every run: the catalogue is read beside it, and it is needed where no config
# path is passed down (host detection's auto model, the first-use download, the cache key).
_CONFIG_IN_EFFECT: list[Path | None] = [None]


def use_config(path: Path | None) -> None:
    """Record the user config file in effect (None: the default one, or AIRPODS_CONFIG)."""
    _CONFIG_IN_EFFECT[0] = path


def user_catalogue_path() -> Path:
    """The user's catalogue, `models.toml` beside the user config file in effect: `--config`,
    else AIRPODS_CONFIG, else the default file (README: "beside your config file")."""
    config = _CONFIG_IN_EFFECT[0] or os.environ.get("AIRPODS_CONFIG") or user_config_path()
    return Path(config).parent / CATALOGUE_FILE
