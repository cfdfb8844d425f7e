"""airpods' configuration: TOML layering, templates, validation and safe edits.

    from airpods.config import load_config
    loaded = load_config(path)          # -> LoadedConfig(config, user_path, raw, host, files)

The names below are imported on first use, so importing this package (or only its schema)
does not pull in jinja2 or tomlkit.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airpods.config.edit import init, set_value
    from airpods.config.loader import (
        LoadedConfig,
        default_config_path,
        load_config,
        load_config_text,
        user_config_path,
    )

_LAZY: dict[str, str] = {
    "LoadedConfig": "airpods.config.loader",
    "default_config_path": "airpods.paths",
    "load_config": "airpods.config.loader",
    "load_config_text": "airpods.config.loader",
    "user_config_path": "airpods.paths",
    "init": "airpods.config.edit",
    "set_value": "airpods.config.edit",
}

__all__ = [
    "LoadedConfig",
    "default_config_path",
    "init",
    "load_config",
    "load_config_text",
    "set_value",
    "user_config_path",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
