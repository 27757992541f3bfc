"""Write sidecar subtitles next to media files, safely.

A subtitle is written to a temporary file in the target folder, flushed to disk
and renamed over the target, so players and Bazarr never see half a file. The
temporary name carries a recognisable marker so that leftovers from a crash can
be cleaned up without touching anything else.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import tempfile
import time
from pathlib import Path
from types import MappingProxyType
from typing import Final, Literal

from babelfish import Error as BabelfishError
from babelfish import Language

__all__ = [
    "TEMP_MARKER",
    "SubtitleWriteError",
    "language_code",
    "may_write",
    "remove_stale_temp_files",
    "sidecar_path",
    "write_atomic",
]

TEMP_MARKER: Final = ".transcriptarr-tmp-"
# ".<target name>.transcriptarr-tmp-<random>", as produced by tempfile.mkstemp below.
_TEMP_NAME: Final = re.compile(r"^\..+" + re.escape(TEMP_MARKER) + r"[A-Za-z0-9_]+$")

# Whisper language codes that are not ISO 639 ("jw" is Whisper's spelling of Javanese).
_WHISPER_ALIASES: Final = MappingProxyType({"jw": "jv"})

CodeStyle = Literal["alpha2", "alpha3"]


class SubtitleWriteError(Exception):
    """A subtitle could not be written; ``str()`` says which file, why and what to do."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"cannot write subtitle {path}: {reason}")
        self.path = path
        self.reason = reason


# --------------------------------------------------------------------------- naming


def sidecar_path(
    media: Path,
    language: str,
    fmt: str = "srt",
    *,
    code_style: CodeStyle = "alpha2",
    marker: str | None = None,
) -> Path:
    """``<stem>.<lang>[.<marker>].<fmt>`` next to the media, e.g. ``Movie (2020).en.srt``."""
    parts = [language_code(language, code_style), *([marker] if marker else []), fmt.lower().lstrip(".")]
    for part in parts:
        _check_name_part(part)
    return media.with_name(".".join([media.stem, *parts]))


def language_code(language: str, code_style: CodeStyle = "alpha2") -> str:
    """Normalise a language code for file names (``en`` <-> ``eng``).

    alpha2 is ISO 639-1, falling back to the 3-letter code where a language has none
    (``haw``); alpha3 is ISO 639-2/B as Plex, Emby and Bazarr read it (``fre``, ``ger``),
    falling back to ISO 639-3 (``yue``). Codes babelfish does not know (or with a
    region, ``pt-BR``) are returned as given.
    """
    parsed = _parse_language(language)
    if parsed is None:
        return language.strip()
    if code_style == "alpha2":
        with contextlib.suppress(BabelfishError):
            return str(parsed.alpha2)
    with contextlib.suppress(BabelfishError):
        return str(parsed.alpha3b)
    return str(parsed.alpha3)


def _parse_language(code: str) -> Language | None:
    low = code.strip().lower()
    low = _WHISPER_ALIASES.get(low, low)
    try:
        if len(low) == 2:
            return Language.fromalpha2(low)
        if len(low) == 3:
            try:
                return Language(low)  # ISO 639-3, which includes 639-2/T
            except ValueError:
                return Language.fromalpha3b(low)
    except (ValueError, BabelfishError):
        return None
    return None


def _check_name_part(part: str) -> None:
    # These end up in a file name next to the user's media: refuse anything path-like.
    if not part or part in {".", ".."} or any(c in part for c in "/\\\0") or part != part.strip():
        raise ValueError(f"invalid subtitle file name part {part!r}")


# --------------------------------------------------------------------------- writing


def may_write(path: Path, *, ours: bool, overwrite_foreign: bool) -> bool:
    """Whether writing ``path`` is allowed.

    ``ours`` says the existing file was written by this service. A subtitle someone
    else wrote (a download, a hand-made one) is only replaced if ``overwrite_foreign``.
    A folder at that path is never replaced.
    """
    if not path.exists() and not path.is_symlink():  # a dangling symlink still belongs to someone
        return True
    if path.is_dir():
        return False
    return ours or overwrite_foreign


def write_atomic(
    path: Path,
    text: str,
    *,
    mode: int | None = None,
    uid: int | None = None,
    gid: int | None = None,
) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically: the file is complete or untouched.

    ``mode`` defaults to the replaced file's mode, else 0o666 minus the umask (mkstemp's
    0o600 would hide the subtitle from a media server running as another user).
    ``uid``/``gid`` chown the file (needs root or ownership). Raises SubtitleWriteError.
    """
    path = Path(path)
    step = "create a temporary file in"
    tmp: Path | None = None
    try:
        # The name is cut so that the temporary name stays within the usual 255-byte limit.
        fd, name = tempfile.mkstemp(prefix=f".{path.name[:200]}{TEMP_MARKER}", dir=path.parent)
        tmp = Path(name)
        step = "write"
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())  # the data must be on disk before the rename makes it visible
        step = "set permissions on"
        tmp.chmod(_default_mode(path) if mode is None else mode)
        if uid is not None or gid is not None:
            step = "change the owner of"
            os.chown(tmp, -1 if uid is None else uid, -1 if gid is None else gid)
        step = "replace"
        tmp.replace(path)  # os.replace: atomic on POSIX
        tmp = None
    except BaseException as exc:  # also on cancellation: never leave a temporary file behind
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()
        if isinstance(exc, OSError):
            raise SubtitleWriteError(path, _explain(exc, step, path, uid, gid)) from exc
        raise
    _fsync_dir(path.parent)


def remove_stale_temp_files(folder: Path, *, min_age: float = 0.0) -> list[Path]:
    """Remove temporary files a crashed write left in ``folder``; return what was removed.

    Only regular files named like ours are touched. ``min_age`` (seconds since last
    modification) protects writes still in progress in another process.
    """
    removed: list[Path] = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for entry in entries:
        if not _TEMP_NAME.match(entry.name):
            continue
        with contextlib.suppress(OSError):  # gone meanwhile or not ours to delete: leave it
            info = entry.lstat()
            if stat.S_ISREG(info.st_mode) and _age(info) >= min_age:
                entry.unlink()
                removed.append(entry)
    return removed


def _age(info: os.stat_result) -> float:
    return time.time() - info.st_mtime


def _default_mode(path: Path) -> int:
    with contextlib.suppress(OSError):
        return stat.S_IMODE(path.stat().st_mode)  # keep the mode of the file we replace
    return 0o666 & ~_umask()


def _umask() -> int:
    # os.umask() can only be read by setting it, which races with other threads; Linux shows it here.
    with contextlib.suppress(OSError, ValueError), Path("/proc/self/status").open(encoding="ascii") as status:
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return 0o022


def _fsync_dir(folder: Path) -> None:
    # Makes the rename durable. Some file systems (SMB, some FUSE) refuse this; the file is
    # already in place then, so that is not worth failing for.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _explain(exc: OSError, step: str, path: Path, uid: int | None, gid: int | None) -> str:
    """A message a user can act on: what failed, and what to change."""
    folder = path.parent
    code = exc.errno
    if code in {errno.EACCES, errno.EPERM} and step == "change the owner of":
        return (
            f"cannot give the file to uid {uid} / gid {gid} ({exc.strerror}); only root may change "
            f"owners: run the service as root or unset PUID/PGID"
        )
    if code in {errno.EACCES, errno.EPERM}:
        return (
            f"folder {folder} is not writable by {_whoami()} ({exc.strerror}); fix its permissions "
            f"or set PUID/PGID to a user that may write there"
        )
    if code == errno.EROFS:
        return f"{folder} is on a read-only file system; mount the media folder read-write"
    if code in {errno.ENOSPC, errno.EDQUOT}:
        return f"no space left for {folder} ({exc.strerror}); free some space or raise the quota"
    if code in {errno.ENOENT, errno.ENOTDIR}:
        return f"folder {folder} does not exist or is not a folder (was the media moved or deleted?)"
    if code == errno.EISDIR:
        return "a folder with that name is in the way; remove or rename it"
    if code == errno.ENAMETOOLONG:
        return "the file name is too long for this file system; shorten the media file name"
    return f"could not {step} {folder if step.endswith(' in') else 'the file'}: {exc.strerror or exc}"


def _whoami() -> str:
    if hasattr(os, "geteuid"):
        return f"uid {os.geteuid()} / gid {os.getegid()}"
    return "the service user"
