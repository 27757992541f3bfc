"""Write sidecar subtitles next to media files, safely.

A subtitle is written to a temporary file in the target folder, flushed to disk
and renamed over the target, so players and Bazarr never see half a file. The
temporary name carries a recognisable marker so that leftovers from a crash can
be cleaned up without touching anything else.

Ownership is the content: a subtitle may only be replaced if its bytes are what this
service wrote there (`Ownership`, hashes read from the registry beforehand). That is
checked again at the moment of the rename, on the file itself, whatever the database
is doing: a file the user saved meanwhile is kept (`ForeignSubtitle`).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from transcriptarr.policy.names import TEMP_MARKER

__all__ = [
    "TEMP_MARKER",
    "ForeignSubtitle",
    "Ownership",
    "SubtitleWriteError",
    "check_folder_writable",
    "check_name_length",
    "content_hash",
    "foreign_reason",
    "may_write",
    "remove_stale_temp_files",
    "write_atomic",
]

# ".<target name>.transcriptarr-tmp-<random>", as produced by tempfile.mkstemp below.
_TEMP_NAME: Final = re.compile(r"^\..+" + re.escape(TEMP_MARKER) + r"[A-Za-z0-9_]+$")


# Write failures that go away by themselves or once space is freed: worth a later retry.
# A read-only file system or missing permissions stay until someone changes them.
_TRANSIENT_ERRNOS: Final = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.ESTALE, errno.ETIMEDOUT})


class SubtitleWriteError(Exception):
    """A subtitle could not be written; ``str()`` says which file, why and what to do.

    ``permanent`` is False for failures a later retry can get past (a full disk,
    a network share that hiccupped) and True for those that need the user.
    """

    def __init__(self, path: Path, reason: str, *, errno_code: int | None = None, subject: str | None = None) -> None:
        super().__init__(f"cannot write {subject or f'subtitle {path}'}: {reason}")
        self.path = path
        self.reason = reason
        self.errno = errno_code
        self.permanent = errno_code not in _TRANSIENT_ERRNOS


class ForeignSubtitle(Exception):
    """The target holds a file this service did not write (found at the rename): it was kept."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path} {reason}; it was kept")
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class Ownership:
    """Which existing file at a path may be replaced.

    ``hashes``: sha256 of the contents this service wrote there (the last write and one
    about to happen). ``any_content``: whatever is there (OVERWRITE_FOREIGN_SUBTITLES, or
    a record from before contents were hashed). A folder is never replaced.
    """

    hashes: frozenset[str] = frozenset()
    any_content: bool = False


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def foreign_reason(path: Path, ownership: Ownership) -> str | None:
    """None if ``path`` is absent or may be replaced; else why it is someone else's (blocking: reads it)."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return None
    if stat.S_ISDIR(info.st_mode):
        return "is a folder"
    if ownership.any_content:
        return None
    if not stat.S_ISREG(info.st_mode):  # a symlink (dangling or not) is someone's choice, never our output
        return "exists and is not a file Transcriptarr wrote (a link or special file)"
    if not ownership.hashes:
        return "exists and was not written by Transcriptarr"
    try:
        digest = _file_hash(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"exists and cannot be read to tell whose it is ({exc.strerror or exc})"
    if digest not in ownership.hashes:
        return "was changed or replaced since Transcriptarr wrote it (its content is not what Transcriptarr wrote)"
    return None


def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


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
    text: str | bytes,
    *,
    mode: int | None = None,
    uid: int | None = None,
    gid: int | None = None,
    ownership: Ownership | None = None,
) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically: the file is complete or untouched.

    ``mode`` defaults to the replaced file's mode, else 0o666 minus the umask (mkstemp's
    0o600 would hide the subtitle from a media server running as another user).
    ``uid``/``gid`` chown the file (needs root or ownership). Raises SubtitleWriteError.
    With ``ownership``, the existing target is judged right before the rename and a file
    that is not ours raises ForeignSubtitle (nothing written); where there was none, the
    new file is linked in without replacing one that appeared in the meantime.
    """
    path = Path(path)
    step = "create a temporary file in"
    tmp: Path | None = None
    try:
        fd, name = tempfile.mkstemp(prefix=f".{_temp_stem(path.name)}{TEMP_MARKER}", dir=path.parent)
        tmp = Path(name)
        step = "write"
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8") if isinstance(text, str) else text)
            handle.flush()
            os.fsync(handle.fileno())  # the data must be on disk before the rename makes it visible
        step = "set permissions on"
        tmp.chmod(_default_mode(path) if mode is None else mode)
        if uid is not None or gid is not None:
            step = "change the owner of"
            os.chown(tmp, -1 if uid is None else uid, -1 if gid is None else gid)
        step = "replace"
        if ownership is None:
            tmp.replace(path)  # os.replace: atomic on POSIX
        else:
            _replace_if_ours(tmp, path, ownership)
        tmp = None
    except BaseException as exc:  # also on cancellation: never leave a temporary file behind
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()
        if isinstance(exc, OSError):
            raise SubtitleWriteError(path, _explain(exc, step, path.parent, uid, gid), errno_code=exc.errno) from exc
        raise
    _fsync_dir(path.parent)


def _replace_if_ours(tmp: Path, path: Path, ownership: Ownership) -> None:
    """Rename ``tmp`` over ``path`` unless what is at ``path`` now is someone else's.

    Decided from the file itself, just before the rename: no database in between.
    """
    while True:
        reason = foreign_reason(path, ownership)
        if reason is not None:
            raise ForeignSubtitle(path, reason)
        if path.exists() or path.is_symlink():
            tmp.replace(path)
            return
        try:
            os.link(tmp, path)  # fails if a file appeared since the look above: never clobbers it
        except FileExistsError:
            continue  # judge the newcomer
        except OSError as exc:
            if exc.errno not in {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK}:
                raise
            tmp.replace(path)  # no hard links here (some FUSE and SMB mounts): a plain rename
            return
        with contextlib.suppress(OSError):  # the subtitle is in place; a leftover link is swept later
            tmp.unlink()
        return


def check_folder_writable(media: Path) -> None:
    """Raise SubtitleWriteError if the folder of ``media`` is read-only or its disk is full.

    A cheap look before hours of transcription: finding out at the final write would
    waste them (and again at every retry). Only what statvfs says for sure is checked;
    anything else (permissions, inodes, quotas) shows at the write itself.
    """
    folder = Path(media).parent
    try:
        info = os.statvfs(folder)
    except OSError:
        return  # a missing folder and the like get their message from the write
    # Root may use the blocks a file system keeps in reserve; other users may not.
    free_blocks = info.f_bfree if hasattr(os, "geteuid") and os.geteuid() == 0 else info.f_bavail
    code = errno.EROFS if info.f_flag & os.ST_RDONLY else errno.ENOSPC if info.f_blocks and not free_blocks else None
    if code is not None:
        reason = _explain(OSError(code, os.strerror(code)), "write", folder, None, None)
        raise SubtitleWriteError(folder, reason, errno_code=code, subject=f"subtitles for {media}")


def check_name_length(path: Path) -> None:
    """Raise SubtitleWriteError when the name of ``path`` is longer than its file system allows.

    Checked before anything else touches the path: even ``exists()`` fails on such a name.
    """
    try:
        limit = os.pathconf(path.parent, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255  # ext4, xfs, btrfs, tmpfs, NTFS (in UTF-16 units, close enough)
    size = len(os.fsencode(path.name))
    if size > limit:
        reason = (
            f"its name would be {size} bytes long, more than the {limit} the file system allows; "
            "shorten the media file name"
        )
        raise SubtitleWriteError(path, reason, errno_code=errno.ENAMETOOLONG)


def _temp_stem(name: str) -> str:
    # Cut in bytes, not characters (an emoji is four), so the temporary name stays within
    # the usual 255-byte limit whenever the target's name does.
    return os.fsencode(name)[:200].decode("utf-8", "ignore")


def remove_stale_temp_files(folder: Path, *, min_age: float = 0.0, only_for: Path | None = None) -> list[Path]:
    """Remove temporary files a crashed write left in ``folder``; return what was removed.

    Only regular files named like ours are touched. ``min_age`` (seconds since last
    modification) protects writes still in progress in another process. ``only_for``
    limits it to the temporary files of writes of that one file (in ``folder``).
    """
    removed: list[Path] = []
    prefix = None if only_for is None else f".{_temp_stem(only_for.name)}{TEMP_MARKER}"
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for entry in entries:
        if not _TEMP_NAME.match(entry.name) or (prefix is not None and not entry.name.startswith(prefix)):
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


def _explain(exc: OSError, step: str, folder: Path, uid: int | None, gid: int | None) -> str:
    """A message a user can act on: what failed, and what to change."""
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
        return f"folder {folder} is on a read-only file system; mount the media folder read-write"
    if code in {errno.ENOSPC, errno.EDQUOT}:
        return f"no space left on the disk holding {folder} ({exc.strerror}); free some space there or raise the quota"
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
