"""Where the configuration lives, and which environment variables override it.

Kept apart from the loader so that code which only needs to know *where* (the resolved-services
cache key, `airpods config path`) imports no pydantic, jinja2 or tomlkit.
"""

from __future__ import annotations

from pathlib import Path

import airpods

# Environment variable -> the key path it overrides (a KeyPath: table keys, list indexes).
ENV_OVERRIDES: dict[str, tuple[str | int, ...]] = {
    "AIRPODS_ACCELERATOR": ("runtime", "accelerator"),
}


def default_config_path() -> Path:
    """The built-in defaults: packaged in the wheel, else the source checkout's copy."""
    package = Path(airpods.__file__).parent
    packaged = package / "defaults" / "airpods.toml"
    return packaged if packaged.exists() else package.parent / "config" / "airpods.toml"


def user_config_path() -> Path:
    """The default user file (platformdirs; honours XDG_CONFIG_HOME on Linux)."""
    import platformdirs

    return platformdirs.user_config_path("airpods") / "config.toml"


CATALOGUE_FILE = "models.toml"


def builtin_catalogue_path() -> Path:
    """The model catalogue (airpods.models.tiers): packaged, else the checkout's copy."""
    package = Path(airpods.__file__).parent
    packaged = package / "defaults" / CATALOGUE_FILE
    return packaged if packaged.exists() else package.parent / "config" / CATALOGUE_FILE


def user_catalogue_path() -> Path:
    """The user's catalogue, beside the default user config file."""
    return user_config_path().parent / CATALOGUE_FILE
