"""What the click group (airpods/cli/app.py) and the fast `--help` (airpods/cli/__init__.py)
share: the command table, the group's help text and the context every command receives."""

from __future__ import annotations

TYPE_CHECKING = False  # typing itself costs `--help` a few ms: annotations are strings here
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

# name -> (module, attribute, one-line help shown by `airpods --help` without importing it)
_COMMANDS: dict[str, tuple[str, str, str]] = {
    "start": ("airpods.cli.lifecycle", "start", "Start services (all enabled ones by default)."),
    "stop": ("airpods.cli.lifecycle", "stop", "Stop services; volumes and models are kept."),
    "status": ("airpods.cli.status", "status", "Show state, health and URL of each service."),
    "logs": ("airpods.cli.status", "logs", "Show or follow a service's container log."),
    "config": ("airpods.cli.config_cmd", "config", "Show, validate and edit the configuration."),
    "models": ("airpods.cli.models", "models", "Pull, list, inspect and clean up GGUF models."),
    "doctor": ("airpods.cli.doctor", "doctor", "Check Podman, the GPU and the configuration."),
    "export": ("airpods.cli.export", "export", "Export the stack as Kubernetes YAML or quadlets."),
    "usage": ("airpods.cli.usage", "usage", "Tokens and cost per model, backend or client."),
    "peers": ("airpods.cli.peers_cmd", "peers", "Gateway peers: their models and reachability."),
}

# The group's help (click's `help=`; already dedented, as click's cleandoc would leave it).
DESCRIPTION = """\
Run a local AI stack (llama.cpp's llama-server, Ollama, Open WebUI) on Podman.

\b
Typical use:
  airpods start --pre-fetch     pull the images
  airpods start llamacpp        start llama-server and wait for the model
  airpods status                what runs, healthy or not, and where
  airpods stop llamacpp         stop it; models stay in their volume"""
CONFIG_HELP = "User config file (default: the platform config dir; env AIRPODS_CONFIG)."
VERBOSE_HELP = "Show more detail."
# The group's options as `--help` lists them, in click's order (the test compares with click).
OPTION_ROWS = (
    ("--version", "Show the version and exit."),
    ("--config PATH", CONFIG_HELP),
    ("-v, --verbose", VERBOSE_HELP),
    ("-h, --help", "Show this message and exit."),
)


class AppContext:
    """What every command receives: explicit, never module globals."""

    def __init__(self, config_path: Path | None, verbose: bool) -> None:
        self.config_path = config_path
        self.verbose = verbose

    def __repr__(self) -> str:
        return f"AppContext(config_path={self.config_path!r}, verbose={self.verbose!r})"

    def load_config(self, **kwargs: Any) -> Any:
        from airpods.config import load_config

        return load_config(self.config_path, **kwargs)
