"""Walking a library folder tree without ever failing on what is found in it.

os.scandir-based and iterative. Problems are logged, collected in the `WalkReport`
and skipped; none of them stops the walk:

- a folder that cannot be listed (permissions, a dead mount): its contents are
  unknown, which a scan must not mistake for "deleted" (`WalkReport.unreadable`);
- a folder holding `.transcriptarr-ignore`: not entered (`WalkReport.ignored`);
- symlinked folders are followed (unless told not to), each folder is entered once
  by device and inode, so a symlink loop ends there;
- broken symlinks, files or folders that vanish while being walked;
- named pipes, sockets and devices (reading a FIFO would block forever): skipped, and said so;
- names with control characters (newlines) or bytes that are not UTF-8.
  Other unusual names (spaces, quotes, unicode, a leading "-") are normal names.
"""

# Paths are plain str throughout the library package (index keys, tens of thousands per scan): os.path.
# ruff: noqa: PTH110, PTH116

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import structlog

from transcriptarr.policy.names import IGNORE_MARKER, unsafe_name_reason

log = structlog.get_logger(__name__)

_SPECIAL = "not a regular file or folder (a named pipe, socket or device)"


@dataclass
class Folder:
    path: str
    files: list[os.DirEntry[str]]
    subfolders: list[str]  # names of the subfolders that are walked


@dataclass
class WalkReport:
    unreadable: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    def skip(self, path: str, reason: str) -> None:
        # repr(): the name may hold a newline or undecodable bytes.
        log.warning("file_skipped", path=repr(path) if unsafe_name_reason(path) else path, reason=reason)
        self.skipped.append((path, reason))


def walk(root: str, report: WalkReport, *, follow_symlinks: bool = True) -> Iterator[Folder]:
    """Yield every folder under `root` (root first) with its files; see the module doc."""
    try:
        info = os.stat(root)
    except OSError as exc:
        _unreadable(report, root, exc)
        return
    visited = {(info.st_dev, info.st_ino)}
    pending = [root]
    while pending:
        folder = pending.pop()
        entries = _list(folder, report)
        if entries is None:
            continue
        if any(entry.name == IGNORE_MARKER for entry in entries):
            log.info("folder_ignored", path=folder, marker=IGNORE_MARKER)
            report.ignored.append(folder)
            continue
        files, subfolders = _sort_entries(entries, report, follow_symlinks)
        entered = []
        # In name order: of two links to one folder, the same one is walked every time.
        for sub in sorted(subfolders, key=lambda entry: entry.name):
            identity = _identity(sub, report)
            if identity is None:
                continue
            if identity in visited:
                log.warning("folder_skipped", path=sub.path, reason="already walked (a symlink loop or a second link)")
                continue
            visited.add(identity)
            entered.append(sub.name)
            pending.append(sub.path)
        yield Folder(folder, files, entered)


def _list(folder: str, report: WalkReport) -> list[os.DirEntry[str]] | None:
    try:
        with os.scandir(folder) as iterator:
            return list(iterator)
    except FileNotFoundError:
        log.debug("folder_vanished", path=folder)
        return None
    except OSError as exc:
        _unreadable(report, folder, exc)
        return None


def _unreadable(report: WalkReport, folder: str, exc: OSError) -> None:
    log.warning("folder_unreadable", path=folder, error=exc.strerror or str(exc), errno=exc.errno)
    report.unreadable.append(folder)


def _sort_entries(
    entries: list[os.DirEntry[str]], report: WalkReport, follow_symlinks: bool
) -> tuple[list[os.DirEntry[str]], list[os.DirEntry[str]]]:
    files, folders = [], []
    for entry in entries:
        reason = unsafe_name_reason(entry.name)
        if reason:
            report.skip(entry.path, reason)
            continue
        try:
            # d_type answers these without a system call on most file systems.
            if entry.is_dir(follow_symlinks=False):
                folders.append(entry)
            elif entry.is_file(follow_symlinks=False):
                files.append(entry)
            elif entry.is_symlink():
                if follow_symlinks:
                    _sort_symlink(entry, files, folders, report)
            else:
                report.skip(entry.path, _SPECIAL)
        except OSError as exc:  # vanished between listing and looking
            log.debug("file_vanished", path=entry.path, error=str(exc))
    return files, folders


def _sort_symlink(
    entry: os.DirEntry[str],
    files: list[os.DirEntry[str]],
    folders: list[os.DirEntry[str]],
    report: WalkReport,
) -> None:
    if entry.is_dir():
        folders.append(entry)
    elif entry.is_file():
        files.append(entry)
    elif not os.path.exists(entry.path):
        report.skip(entry.path, "broken symlink")
    else:
        report.skip(entry.path, f"a symlink to something {_SPECIAL}")


def _identity(entry: os.DirEntry[str], report: WalkReport) -> tuple[int, int] | None:
    try:
        info = entry.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        _unreadable(report, entry.path, exc)
        return None
    return info.st_dev, info.st_ino
