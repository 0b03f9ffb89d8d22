"""Files flowctl reads and writes for the user: every reason one cannot be used is a `UsageError`.

Each names what the file is for (`--input`, `config`, `server state dir`) and the path, so
a file that is a directory, unreadable, not UTF-8 or in a folder that is a file ends in one
line and exit 2, not a traceback.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from flowctl.errors import UsageError


def is_text(value: str) -> bool:
    """Whether `value` is Unicode text: Python keeps bytes that are not UTF-8 (in arguments,
    the environment) and JSON's "\\ud800" as lone surrogates, which no output can encode."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def decode(data: bytes, what: str, *, hint: str | None = None) -> str:
    """Bytes from a file or a pipe as text: UTF-8 (a leading BOM is dropped), else a `UsageError`."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise UsageError(
            f"{what}: not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line})",
            hint=hint or "save it as UTF-8",
        ) from None


MiB = 1024 * 1024
# How much flowctl reads of a file it is given, at most: more is not a file of that kind
# (/dev/zero, a disk image), and reading on would take all memory, deaf to Ctrl-C meanwhile.
INPUT_LIMIT = 8 * MiB  # -i: a payload (Temporal refuses one over 2 MiB by default)
BULK_LIMIT = 256 * MiB  # --from: a JSONL file, one payload per line (about 250,000 orders)
SMALL_LIMIT = MiB  # config and key files


def read_text(path: Path, what: str, *, hint: str | None = None, limit: int = SMALL_LIMIT) -> str:
    """A text file's content; any reason it cannot be read is a `UsageError` naming `what`."""
    return decode(read_bytes(path, what, hint=hint, limit=limit), f"{what} {path}")


def read_bytes(path: Path, what: str, *, hint: str | None = None, limit: int = SMALL_LIMIT) -> bytes:
    """A file's bytes, at most `limit` of them; any reason it cannot be read is a `UsageError`."""
    try:
        with path.open("rb") as handle:
            return within(handle.read(limit + 1), limit, f"{what} {path}")
    except IsADirectoryError:
        raise UsageError(f"{what} {path}: is a directory, not a file", hint=hint) from None
    except OSError as exc:
        raise UsageError(f"{what} {path}: cannot read: {exc.strerror}", hint=hint) from None


def within(data: bytes, limit: int, what: str) -> bytes:
    """`data`, read with one byte to spare, if it fits in `limit`."""
    if len(data) > limit:
        raise UsageError(
            f"{what}: larger than {limit // MiB} MiB, more than flowctl reads of it", hint="check the path"
        )
    return data


def ensure_dir(path: Path, what: str) -> Path:
    """`path` as a directory that exists, made if need be."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UsageError(f"{what} {path}: a file is in the way, not a directory", hint="move it aside") from None
    except OSError as exc:
        raise UsageError(f"{what} {path}: cannot create it: {exc.strerror}", hint="choose a writable place") from None
    if not path.is_dir():
        raise UsageError(f"{what} {path}: not a directory", hint="move it aside")
    return path


def write_text(path: Path, text: str, what: str) -> None:
    """Write `text` to `path` at once (a reader sees the old file or the new, never half of
    one), making its folder if need be; a symlink is kept, its target written."""
    target = path.resolve() if path.is_symlink() else path
    ensure_dir(target.parent, f"{what}'s folder")
    if target.is_dir():
        raise UsageError(f"{what} {path}: is a directory, not a file", hint="move it aside")
    staged = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        staged.write_text(text, encoding="utf-8")
        if target.exists():
            os.chmod(staged, target.stat().st_mode & 0o777)
        os.replace(staged, target)
    except OSError as exc:
        staged.unlink(missing_ok=True)
        raise UsageError(f"{what} {path}: cannot write: {exc.strerror}", hint="choose a writable place") from None


@contextlib.contextmanager
def locked(lock: Path, what: str) -> Iterator[None]:
    """Hold `lock` (a file beside what it guards) for a read-change-write: a second process waits."""
    import fcntl

    ensure_dir(lock.parent, what)
    try:
        handle = lock.open("a")
    except OSError as exc:
        raise UsageError(f"{what} {lock.parent}: cannot write: {exc.strerror}") from None
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
