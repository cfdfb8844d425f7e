"""Every exception airpods raises past one module, in one place (as httpx's _exceptions.py).

The tree (a built-in base in brackets where a class keeps it, so callers that catch OSError,
ConnectionError or AttributeError still do):

* AirpodsError - a failure the user can act on, told in one line; `exit_code` 1
  + UsageError - bad flags or arguments; exit 2
  + ConfigError - a config file's problem, with file, TOML key path and line; exit 2
  | + TemplateError - a template that cannot be rendered (its `path` the key holding it)
  + PodmanError - Podman missing, unreachable, or refusing an operation
  | + NoSuchContainer - the container asked for does not exist
  + PortInUse - a port a service publishes is taken (`holder` when /proc tells who)
  + ServiceFailed - a service did not become ready (`log_tail` its last lines)
* WiringError - a service cannot be wired into another (config/templates.py reports it)
* TemplateLimitError - a template asked for more than config/template_limits.py allows
* [OSError] SecretFileError - a secret file or directory airpods refuses to use
* [ConnectionError] ConnectionClosed - a server closed before a whole HTTP answer (http1.py)
  + NotHTTP - what came back is not HTTP at all
* [ConnectionError] ConnectionLost - Podman's API service did not answer (engine/libpod.py)
* LocalTransportError - no answer from a service's published port (localhttp.py)
* TransportError - talking to the hub: connection failed, timed out or was cut; retried
* BadAnswer - the hub sent what it never sends (not HTTP, not its JSON); not retried
* HubAnswer - an error answer from the hub (HTTP status, X-Error-Code)
* Deadline - no whole answer from the hub within a question's deadline
* RetryableStatus - a status (or an early end) a download retries
* [AttributeError] FrozenInstanceError - an assignment to a field of a record (record.py)

Only the AirpodsError branch reaches the user as is; the others are caught by the module that
knows the context and turned into one (cli/ catches AirpodsError and exits with its code).
A class private to one module (raised and caught there, named with a leading `_`) may stay there.
This module imports nothing: http1.py and localhttp.py sit on `status`'s fast path.
"""

from __future__ import annotations

import errno
from typing import Any


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


class TemplateError(ConfigError):
    """A template that cannot be rendered; `path` is the key whose value holds it (`key_path`
    its text: config/templates.py formats it, this module imports nothing)."""

    def __init__(self, message: str, *, path: tuple[str | int, ...], key_path: str,
                 hint: str | None = None) -> None:
        super().__init__(message, key_path=key_path, hint=hint)
        self.path = path


class PodmanError(AirpodsError):
    """Podman is missing, unreachable, or refused an operation."""


class NoSuchContainer(PodmanError):
    """The container asked for does not exist (the adapter's word for podman-py's NotFound)."""


class PortInUse(AirpodsError):
    """A port a service publishes is taken; `holder` (engine/ports.Holder) when /proc tells who."""

    def __init__(self, message: str, *, port: int, holder: Any,
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.port = port
        self.holder = holder


class ServiceFailed(AirpodsError):
    """A service did not become ready; `log_tail` holds the container's last lines."""

    def __init__(self, message: str, *, hint: str | None = None, log_tail: str = "") -> None:
        super().__init__(message, hint=hint)
        self.log_tail = log_tail


# --- config and templates ---------------------------------------------------------------------


class WiringError(Exception):
    """A service cannot be wired into another (templates report it at `path`)."""

    def __init__(self, message: str, path: tuple[str | int, ...]) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


class TemplateLimitError(Exception):
    """A template asked for more than the limits allow; the message says which limit."""


class SecretFileError(OSError):
    """A secret file or directory airpods refuses to use: `strerror` says why, `hint` the fix."""

    def __init__(self, path: Any, reason: str, hint: str) -> None:
        # The path leads the reason: it may be a directory above the secret being read.
        super().__init__(errno.EPERM, f"{path} {reason}", str(path))
        self.hint = hint


# --- HTTP: Podman's socket and the services' ports --------------------------------------------


class ConnectionClosed(ConnectionError):
    """The server closed the connection before a whole answer arrived (or sent no HTTP)."""


class NotHTTP(ConnectionClosed):
    """What came back is not an HTTP answer at all (another protocol, or garbage)."""


class ConnectionLost(ConnectionError):
    """Podman's API service did not answer, or cut an answer short."""


class LocalTransportError(Exception):
    """No answer from a service's port: `detail` says why in the words `status` shows
    ("connection refused", ...)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


# --- HTTP: the hub ----------------------------------------------------------------------------


class TransportError(Exception):
    """The connection to the hub failed, timed out or was cut: worth another try
    (models/retry.py). The name shows in `models pull`'s notes."""


class BadAnswer(Exception):
    """An answer that is not what the hub sends (not HTTP, not its JSON): not worth a retry."""


class HubAnswer(Exception):
    """An error answer from the hub (its X-Error-Code says which, where it sends one)."""

    def __init__(self, response: Any) -> None:
        self.response = response  # is_transient reads response.status_code (5xx, 429: retried)
        self.status = int(response.status_code)
        self.code = response.headers.get("X-Error-Code", "")
        self.message = response.headers.get("X-Error-Message", "")
        super().__init__(f"HTTP {self.status} {self.code}".strip())


class Deadline(Exception):
    """No whole answer within the deadline (a silent server, or one that drips)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no whole answer within {seconds:g} s")


class RetryableStatus(Exception):
    """An HTTP status a download retries (0: the connection ended early)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


# --- records ----------------------------------------------------------------------------------


class FrozenInstanceError(AttributeError):
    """An assignment to, or deletion of, a field of a record (as dataclasses' own)."""
