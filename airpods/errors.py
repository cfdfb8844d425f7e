"""Errors airpods reports as one clear line (what, where, how to fix) instead of a traceback."""

from __future__ import annotations


class AirpodsError(Exception):
    """A failure the user can act on. `exit_code` 1 = runtime failure, 2 = usage/config error."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(AirpodsError):
    exit_code = 2


class ConfigError(AirpodsError):
    """A problem in a config file, located by file, TOML key path and line when known."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        key_path: str | None = None,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.file = file
        self.key_path = key_path
        self.line = line

    def one_line(self) -> str:
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        key = f"{self.key_path}: " if self.key_path else ""
        return f"config error: {where}{key}{super().one_line()}"


class PodmanError(AirpodsError):
    """Podman is missing, unreachable, or refused an operation."""


class NoSuchContainer(PodmanError):
    """The container asked for does not exist (the adapter's word for podman-py's NotFound)."""


class ServiceFailed(AirpodsError):
    """A service did not become ready; `log_tail` holds the container's last lines."""

    def __init__(self, message: str, *, hint: str | None = None, log_tail: str = "") -> None:
        super().__init__(message, hint=hint)
        self.log_tail = log_tail
