"""Real small, full and read-only file systems for fault tests (needs root: mount(8)).

Tests run as root, so chmod cannot stop a write: only a real file system can say
"no space left" or "read-only". Every mount made here is undone when its `with`
block ends, whatever happened inside; when mounting is not allowed, the test is
skipped saying why (and fails under CI=true, like tests/conftest.py `unavailable`).

    with tmpfs(tmp_path / "lib", size="1m") as lib:     # a tiny disk
        fill(lib)                                         # ... now full
    with read_only_view(shelf, tmp_path / "ro") as ro:   # the same files, read-only
        ...
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import unavailable

FILLER_NAME = "filler.bin"


def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True, check=False)


def _require(done: subprocess.CompletedProcess[str], what: str) -> None:
    if done.returncode != 0:
        unavailable(f"cannot {what} here (mount needs root and permission to mount): {done.stderr.strip()}")


def _mounted(target: Path) -> bool:
    # Path.is_mount cannot tell a bind mount: it has the device number of its parent.
    escaped = str(target.resolve()).replace("\\", "\\134").replace(" ", "\\040").replace("\t", "\\011")
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as table:
        return any(line.split()[4] == escaped for line in table)


def _unmount(target: Path) -> None:
    """Unmount (lazily if something still holds it): a test must never leave a mount behind."""
    for _ in range(4):  # a mount point can hold a stack of mounts
        if not _mounted(target):
            return
        done = subprocess.run(["umount", str(target)], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            subprocess.run(["umount", "-l", str(target)], capture_output=True, text=True, check=True)
    raise RuntimeError(f"{target} is still mounted")


@contextlib.contextmanager
def tmpfs(target: Path, *, size: str = "1m", inodes: int | None = None) -> Iterator[Path]:
    """A fresh tmpfs of `size` (and at most `inodes` files and folders) mounted at `target`."""
    target.mkdir(parents=True, exist_ok=True)
    options = f"size={size},mode=0755" + (f",nr_inodes={inodes}" if inodes else "")
    _require(_mount("-t", "tmpfs", "-o", options, "tmpfs", str(target)), "mount a tmpfs")
    try:
        yield target
    finally:
        _unmount(target)


@contextlib.contextmanager
def read_only_view(source: Path, target: Path) -> Iterator[Path]:
    """`source` bind-mounted at `target`, read-only there (a share mounted read-only); `source` stays writable."""
    target.mkdir(parents=True, exist_ok=True)
    _require(_mount("--bind", str(source), str(target)), "bind-mount a folder")
    try:
        _require(_mount("-o", "remount,ro,bind", str(target)), "remount a bind mount read-only")
        yield target
    finally:
        _unmount(target)


@contextlib.contextmanager
def writable_view(source: Path, target: Path) -> Iterator[Path]:
    """`source` bind-mounted at `target`, writable until `make_read_only(target)`."""
    target.mkdir(parents=True, exist_ok=True)
    _require(_mount("--bind", str(source), str(target)), "bind-mount a folder")
    try:
        yield target
    finally:
        _unmount(target)


def make_read_only(target: Path) -> None:
    """Turn the bind mount at `target` read-only now (the share went read-only under us)."""
    done = _mount("-o", "remount,ro,bind", str(target))
    if done.returncode != 0:
        raise RuntimeError(f"cannot remount {target} read-only: {done.stderr.strip()}")


def fill(folder: Path, name: str = FILLER_NAME) -> Path:
    """Write one file in `folder` until its file system has no free block left; return it."""
    filler = folder / name
    block = b"\0" * 65536
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        while True:
            try:
                os.write(fd, block)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                break
        # The last, partial block: smaller writes until not even one byte fits.
        for size in (4096, 512, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    assert os.statvfs(folder).f_bfree == 0, "the file system still has free blocks"
    return filler


def use_up_inodes(folder: Path) -> list[Path]:
    """Create empty files in `folder` until its file system can hold no more; return them."""
    made: list[Path] = []
    while True:
        path = folder / f"inode-{len(made)}"
        try:
            path.touch()
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            return made
        made.append(path)
