"""Whether the service can create files in a folder, and if not, the real reason in one line.

Checked at start-up for DATA_DIR and a SQLite database's folder, so that a read-only mount or a
folder owned by someone else is one line naming the folder, not a traceback from deep inside.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path


def folder_problem(folder: Path) -> str | None:
    """None when files can be created in `folder` (made first if missing); else why not."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        return f"{folder} exists and is not a folder"
    except OSError as exc:
        return _why(Path(exc.filename or folder), exc)
    try:
        handle, name = tempfile.mkstemp(prefix=".transcriptarr-write-check-", dir=folder)
    except OSError as exc:
        return _why(folder, exc)
    os.close(handle)
    Path(name).unlink(missing_ok=True)
    return None


def _why(folder: Path, exc: OSError) -> str:
    if exc.errno == errno.EROFS:
        return f"folder {folder} is on a read-only file system"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"no permission to write in {folder} (the service runs as uid {os.getuid()}, gid {os.getgid()})"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"the disk holding {folder} is full"
    if exc.errno == errno.ENOTDIR:
        return f"part of {folder} is a file, not a folder"
    return f"cannot create files in {folder}: {exc.strerror or exc}"
