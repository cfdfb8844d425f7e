"""Secrets, in one place: generating and keeping them; which values are secret and hiding
them is airpods.masking (its names are importable from here too).

**Keeping.** Generated values (API keys, session keys) are made in memory when the config is
loaded; only `save()` writes them: 0600 files in 0700 directories, `<root>/<service>/<VAR>`.
Values no longer asked for (a gateway client removed from the config) are deleted by `save()`
too, once `drop()` named them.
`start` saves after the config validated (under its lock), and so do `config show` /
`config get`, so that a key a user reads is the key the next `start` uses. A command that fails,
or that only plans (`start --dry-run`, `config validate`), leaves no file.

A file that is missing, empty or only whitespace holds no secret: a value is generated for it,
and `save()` replaces the file. A file that holds a value is never overwritten: when two
processes generate the same secret, the first to save wins (`save()` returns False to the other,
whose value was never kept).

Files are untrusted: the secrets directory, a service's directory and a secret file are opened
without following symbolic links (a link is refused: it could point a key at, or let us chmod,
someone else's file); one owned by another user is refused; one that others can read or write
is tightened (0600 / 0700, through the open descriptor) with a note; a key with whitespace or
a control character inside is refused.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from airpods.errors import AirpodsError, SecretFileError
from airpods.masking import (  # noqa: F401  (the masking API, importable from here)
    MASK,
    MIN_MASKED_LEN,
    SECRET_KEY_RE,
    is_secret_key,
    key_problem,
    mask_argv,
    mask_data,
    mask_env,
    mask_ini,
    mask_text,
    mask_tree,
    remember,
    secret_env_keys,
    secret_values,
    seen_values,
    tree_secret_values,
)

MAX_SECRET_BYTES = 4096  # a kept key is ~43 bytes; anything this big was not written by airpods


# --- keeping ----------------------------------------------------------------------------------


def default_root() -> Path:
    from airpods.paths import user_dir

    return user_dir("data") / "secrets"


def _note_on_stderr(text: str) -> None:
    sys.stderr.write(f"note: {text}\n")


class SecretStore:
    def __init__(
        self, root: Path | None = None, *, note: Callable[[str], None] | None = None
    ) -> None:
        self.root = root if root is not None else default_root()
        self._pending: dict[Path, str] = {}
        self._dropped: set[Path] = set()
        self._note = note if note is not None else _note_on_stderr

    def path(self, service: str, var: str) -> Path:
        return self.root / service / var

    def get(self, service: str, var: str) -> str:
        """The kept value, or a new one (pending until `save()`).

        Raises OSError (other than a missing file; SecretFileError for a file or directory
        airpods refuses) and UnicodeDecodeError for a file that cannot be read: the caller knows
        which setting asked, and reports it.
        """
        path = self.path(service, var)
        if path in self._pending:
            return self._pending[path]
        value = self.kept(service, var)
        if not value:
            # Missing, empty or blank: an empty key would leave the service unprotected.
            import secrets  # only to make a key: the module costs every command a few ms

            value = secrets.token_urlsafe(32)
            self._pending[path] = value
        remember([value])
        return value

    def adopt(self, service: str, var: str, value: str) -> None:
        """Hold `value`, generated earlier and kept by no file, as `get` would have generated
        it (pending until `save()`): a cache entry's (airpods.cache), so that the specs that
        use it and the file `save()` writes agree."""
        self._pending[self.path(service, var)] = value
        remember([value])

    def kept(self, service: str, var: str) -> str:
        """The value the file holds ("" when there is none), read with every check above."""
        path = self.path(service, var)
        with self._service_dir(path, create=False) as dir_fd:
            return "" if dir_fd is None else _read_key(dir_fd, var, path, self._note)

    def names(self, service: str) -> list[str]:
        """The variables a service has kept (its directory, read with every check above)."""
        with self._service_dir(self.path(service, "_"), create=False) as dir_fd:
            return [] if dir_fd is None else sorted(
                name for name in os.listdir(dir_fd) if not name.startswith(".")
            )

    def drop(self, service: str, var: str) -> None:
        """Delete a kept value at `save()` (a revoked key: the name, added again, gets a new
        one, never the old key back)."""
        self._dropped.add(self.path(service, var))

    @property
    def pending(self) -> bool:
        """True when values were generated that no file holds yet, or are to be deleted."""
        return bool(self._pending or self._dropped)

    def save(self) -> bool:
        """Write the values generated so far: each a file, 0600, in a 0700 directory.

        Returns False when another process saved one of them first: its file is kept, and the
        value this store handed out for it is not (load again to use the kept one; `get` now
        reads it). Raises AirpodsError when a file cannot be written.
        """
        all_ours = True
        for path, value in self._pending.items():
            try:
                all_ours &= self._write_new(path, value)
            except SecretFileError as exc:
                raise AirpodsError(
                    f"cannot save the generated secret {path}: {exc.strerror}",
                    hint=exc.hint,
                ) from None
            except OSError as exc:
                raise AirpodsError(
                    f"cannot save the generated secret {path}: {exc.strerror or exc}",
                    hint=f"check that {self.root} is a writable directory",
                ) from None
        self._pending.clear()
        self._delete_dropped()
        return all_ours

    def _delete_dropped(self) -> None:
        for path in sorted(self._dropped):
            try:
                with self._service_dir(path, create=False) as dir_fd:
                    if dir_fd is not None:
                        # unlink never follows a link: a planted one is removed, not its target
                        os.unlink(path.name, dir_fd=dir_fd)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise AirpodsError(f"cannot delete the revoked secret {path}: {exc.strerror}",
                                   hint=f"delete {path} yourself") from None
        self._dropped.clear()

    def _write_new(self, path: Path, value: str) -> bool:
        """Write `value` to `path` atomically unless it already holds a value; True if written."""
        self.root.parent.mkdir(parents=True, exist_ok=True)
        with self._service_dir(path, create=True) as dir_fd:
            assert dir_fd is not None  # created
            return _write_in(dir_fd, path, value, self._note)

    @contextlib.contextmanager
    def _service_dir(self, path: Path, *, create: bool) -> Iterator[int | None]:
        """The open directory of the secret `path` (root/service/VAR), opened with every check
        from the root down; None when it is not there (and `create` is off)."""
        root_fd = _open_dir(self.root, None, str(self.root), create=create, note=self._note)
        if root_fd is None:
            yield None
            return
        try:
            dir_fd = _open_dir(path.parent, root_fd, path.parent.name, create=create,
                               note=self._note)
            if dir_fd is None:
                yield None
                return
            try:
                yield dir_fd
            finally:
                os.close(dir_fd)
        finally:
            os.close(root_fd)


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


def _link_error(path: Path, what: str) -> SecretFileError:
    return SecretFileError(
        path,
        f"is a symbolic link; airpods keeps secrets only in a real {what} of your own",
        f"remove the link {path}; airpods creates a private {what} in its place",
    )


def _open_dir(
    path: Path, dir_fd: int | None, name: str, *, create: bool, note: Callable[[str], None]
) -> int | None:
    """An fd for the directory `name` (in `dir_fd`), never through a link; None if missing."""
    created = False
    if create:
        try:
            os.mkdir(name, 0o700, dir_fd=dir_fd)
            created = True
        except FileExistsError:
            pass
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        if create:
            raise
        return None
    except OSError as exc:
        # Linux says ENOTDIR, not ELOOP, for O_NOFOLLOW|O_DIRECTORY on a link to a directory.
        if exc.errno == errno.ELOOP or (
            exc.errno == errno.ENOTDIR and stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode)
        ):
            raise _link_error(path, "directory") from None
        if exc.errno == errno.ENOTDIR:
            raise SecretFileError(
                path, "is not a directory", f"move {path} away; airpods creates a directory there"
            ) from None
        raise
    try:
        _check_owner_and_mode(fd, path, 0o700, note, quiet=created)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _check_owner_and_mode(
    fd: int, path: Path, wanted: int, note: Callable[[str], None], *, quiet: bool = False
) -> None:
    """Refuse what another user owns; tighten what others may read or write (through `fd`)."""
    st = os.fstat(fd)
    uid = os.getuid() if hasattr(os, "getuid") else st.st_uid
    if st.st_uid != uid:
        raise SecretFileError(
            path,
            f"is owned by uid {st.st_uid}, not by you (uid {uid})",
            f"remove {path}, or chown it to yourself if you trust its content",
        )
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        os.fchmod(fd, wanted)
        if not quiet:
            note(f"{path} was open to other users (mode {mode:04o}): tightened to {wanted:04o}")


def _read_key(dir_fd: int, name: str, path: Path, note: Callable[[str], None]) -> str:
    """The key in file `name` of `dir_fd` ("" if missing or blank), checked as described above."""
    try:
        fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        return ""
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _link_error(path, "file") from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SecretFileError(
                path, "is not a regular file", f"remove {path}; airpods writes a new key there"
            )
        _check_owner_and_mode(fd, path, 0o600, note)
        data = b""
        while len(data) <= MAX_SECRET_BYTES:
            chunk = os.read(fd, MAX_SECRET_BYTES + 1 - len(data))
            if not chunk:
                break
            data += chunk
    finally:
        os.close(fd)
    if len(data) > MAX_SECRET_BYTES:
        raise SecretFileError(
            path, f"is larger than {MAX_SECRET_BYTES} bytes: not a key",
            f"delete {path} to generate a new key",
        )
    value = data.decode("utf-8").strip()
    problem = key_problem(value) if value else None
    if problem:
        raise SecretFileError(
            path, f"{problem} inside the key",
            f"delete {path} to generate a new key, or write the key on one line",
        )
    return value


def _write_in(dir_fd: int, path: Path, value: str, note: Callable[[str], None]) -> bool:
    # A name of our own: a concurrent save never writes into this file.
    tmp = f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(tmp, flags, 0o600, dir_fd=dir_fd)
    try:
        try:
            os.fchmod(fd, 0o600)
            data = (value + "\n").encode("utf-8")
            while data:
                data = data[os.write(fd, data):]
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            # Atomic, and fails if a file (or link) is there already.
            os.link(tmp, path.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
            return True
        except FileExistsError:
            if _read_key(dir_fd, path.name, path, note):
                return False  # another process saved first: its value stands
        except OSError:
            pass  # no hard links on this file system: replace instead
        os.replace(tmp, path.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=dir_fd)


def local_key(path: Path | None = None, *, create: bool = True) -> bytes | None:
    """A random key, kept 0600 beside the secrets, that authenticates files airpods writes for
    itself (the resolved-services cache): an entry edited by hand or planted fails its check.

    Created on first use (None without `create`: a read-only command writes nothing). A key
    file that is a symlink, not ours, or readable by others is replaced, never followed or
    trusted.
    """
    from airpods.paths import user_dir

    path = path if path is not None else user_dir("data") / "local.key"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:  # missing, or a symlink (ELOOP) or something we will not read
        if not create:
            return None
        if not isinstance(exc, FileNotFoundError):
            path.unlink(missing_ok=True)
        return _new_local_key(path)
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(handle.fileno())
        ours = stat.S_ISREG(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077
        data = handle.read(64) if ours else b""
    if len(data) == 64:
        return data
    if not create:
        return None
    path.unlink(missing_ok=True)
    return _new_local_key(path)


def _new_local_key(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = os.urandom(64)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)  # another process may have made one first: use that
        except FileExistsError:
            return local_key(path)
    finally:
        tmp.unlink(missing_ok=True)
    return data
