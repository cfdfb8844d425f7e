"""Files airpods reads and writes: read only regular files, size-capped; write atomically,
never replacing anything but a regular file.

A path given by a careless or hostile hand (`--config /dev/zero`, a FIFO, a directory, a
symlink loop, a huge file) is one ConfigError, quickly: the file's type is checked before it is
opened (opening a device can have side effects), the opened descriptor is checked again (the
path may have been swapped in between), and at most MAX_CONFIG_BYTES are read. `/dev/null`
reads as an empty file, since "no settings" is what it means.

Imports nothing heavy: the resolved-services cache can use `read_config_bytes` for its key.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from airpods.errors import AirpodsError, ConfigError
from airpods.record import record

MAX_CONFIG_BYTES = 4 * 1024 * 1024
_DEV_NULL = os.makedev(1, 3)  # the same on every Linux system
_FIX = "point --config / AIRPODS_CONFIG at a regular TOML file"


def _stat(path: Path) -> os.stat_result | None:
    """stat(path), links followed; None when nothing is there, ConfigError when unreadable."""
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise unreadable(path, exc) from None


def read_config_bytes(path: Path) -> bytes | None:
    """The bytes of the config file at `path`, or None when nothing is there.

    Raises ConfigError (naming the file) for a directory, FIFO, socket or device other than
    /dev/null, a file over MAX_CONFIG_BYTES, a symlink loop or any other read failure.
    """
    st = _stat(path)
    if st is None:
        return None
    if _is_dev_null(st):
        return b""
    check_regular(path, st)
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC  # a swapped-in FIFO
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise unreadable(path, exc) from None
    try:
        st = os.fstat(fd)
        if _is_dev_null(st):
            return b""
        check_regular(path, st)
        return _read_capped(path, fd)
    except OSError as exc:
        raise unreadable(path, exc) from None
    finally:
        os.close(fd)


def _read_capped(path: Path, fd: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = os.read(fd, min(1 << 20, MAX_CONFIG_BYTES + 1 - total))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if total > MAX_CONFIG_BYTES:
            raise _too_big(path)


def check_regular(path: Path, st: os.stat_result) -> None:
    """Raise ConfigError unless `st` (of `path`) is a regular file small enough to read."""
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"is {file_kind(st.st_mode)}, not a regular file", file=str(path),
                          hint=_FIX)
    if st.st_size > MAX_CONFIG_BYTES:
        raise _too_big(path, st.st_size)


def check_replaceable(path: Path) -> os.stat_result | None:
    """The stat of the existing file at `path` (symlinks followed), None when there is none.

    Raises ConfigError when something other than a regular file is there: writing a config
    never replaces a device, FIFO, socket or directory with a file.
    """
    st = _stat(path)
    if st is None:
        return None
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(
            f"is {file_kind(st.st_mode)}, not a regular file: airpods will not replace it",
            file=str(path),
            hint=_FIX,
        )
    return st


def file_kind(mode: int) -> str:
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def unreadable(path: Path, exc: OSError) -> ConfigError:
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ELOOP:
        reason = "symlink loop (too many levels of symbolic links)"
    return ConfigError(f"cannot read: {reason}", file=str(path))


def _too_big(path: Path, size: int | None = None) -> ConfigError:
    got = f"{size} bytes" if size is not None else "more than that"
    return ConfigError(f"too big to be a config file ({got}; the limit is 4 MiB)",
                       file=str(path), hint=_FIX)


def _is_dev_null(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == _DEV_NULL


def atomic_write(
    path: Path,
    text: str,
    *,
    mode: int | None = None,
    check: Callable[[Path], os.stat_result | None] = check_replaceable,
) -> None:
    """Replace `path` with `text` so that readers see the old file or the new, never a mix.

    Temp file in the same directory (so the rename cannot cross filesystems), fsync, rename.
    Without `mode`, keeps the old file's owner and permissions (root editing a user's file
    leaves it theirs) and makes a new file private (0600: it may hold API keys). A symlink is
    followed, so a dotfiles-managed link keeps pointing at the real file. `check` refuses
    anything but a regular file (a device, a FIFO, a directory), which is never replaced.
    """
    # realpath, not resolve(): a symlink loop must reach the one-line error below.
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    old = check(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        import tempfile  # only when writing: status and start read

        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise AirpodsError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
            if mode is None:
                _copy_owner_and_mode(handle.fileno(), old)
            else:
                os.fchmod(handle.fileno(), mode)
        os.replace(tmp_name, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        if isinstance(exc, OSError):
            raise AirpodsError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise
    _fsync_dir(target.parent)


def _copy_owner_and_mode(fd: int, old: os.stat_result | None) -> None:
    if old is None:
        os.fchmod(fd, 0o600)
        return
    own = os.fstat(fd)
    if (own.st_uid, own.st_gid) != (old.st_uid, old.st_gid):
        # Only root may give a file away; a user editing a group-writable file keeps today's
        # behaviour (the file becomes theirs) rather than failing the edit.
        with contextlib.suppress(PermissionError):
            os.fchown(fd, old.st_uid, old.st_gid)
    os.fchmod(fd, old.st_mode & 0o7777)  # after fchown, which clears set-id bits


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not every filesystem allows it, and that is fine.
    from airpods.durable import fsync_dir

    with contextlib.suppress(OSError):
        fsync_dir(directory)


# --- config files as layers ------------------------------------------------------------------


@record
class Layer:
    """One source of settings: a TOML file, or an environment override."""

    label: str  # what errors name as the file: a path, or `$VARIABLE`
    data: dict[str, Any]
    text: str | None = None  # the file's text, for line numbers


def read_text(path: Path) -> str:
    """A config file's text; a missing file is a ConfigError too (see read_optional_text)."""
    text = read_optional_text(path)
    if text is None:
        raise ConfigError("cannot read: No such file or directory", file=str(path))
    return text


def read_optional_text(path: Path) -> str | None:
    """A config file's text (a leading UTF-8 BOM dropped), None when there is no file.

    Only a regular file (or /dev/null) of at most 4 MiB is read: see airpods.config.files.
    """
    data = read_config_bytes(path)
    if data is None:
        return None
    try:
        return _drop_bom(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte {exc.start + 1})", file=str(path)) from None


def _drop_bom(text: str) -> str:
    # Editors on Windows write one; TOML does not allow it, but it means nothing.
    return text[1:] if text.startswith("\ufeff") else text


def parse_layer(path: Path, text: str) -> Layer:
    """Parse one TOML file; a syntax error is one ConfigError with its line."""
    import tomlkit
    from tomlkit.exceptions import ParseError, TOMLKitError

    text = _drop_bom(text)
    try:
        data = tomlkit.parse(text).unwrap()
    except ParseError as exc:
        message = re.sub(r" at line \d+ col \d+$", "", str(exc))
        raise ConfigError(
            f"TOML syntax error: {message} (column {exc.col})", file=str(path), line=exc.line
        ) from None
    except TOMLKitError as exc:
        # Some errors (a key repeated inside a table) come without a position.
        line = _repeated_key_line(text, str(exc))
        raise ConfigError(f"TOML syntax error: {exc}", file=str(path), line=line) from None
    return Layer(str(path), data, text)


def _repeated_key_line(text: str, message: str) -> int | None:
    """For tomlkit's 'Key "x" already exists.': the line of the second `x = ...`."""
    match = re.match(r'Key "(.+)" already exists', message)
    if not match:
        return None
    seen = 0
    for number, line in enumerate(text.splitlines(), start=1):
        key = key_before(line.strip(), "=")
        if key and key[-1] == match.group(1):
            seen += 1
            if seen == 2:
                return number
    return None


def key_before(text: str, terminator: str) -> tuple[str, ...] | None:
    """The dotted TOML key at the start of `text` when `terminator` follows it, else None."""
    from airpods.keys import split_dotted_key

    try:
        key, rest = split_dotted_key(text)
    except ValueError:
        return None
    return key if rest.startswith(terminator) else None
