"""`transcriptarr explain PATH` and `transcriptarr scan [--dry-run]`: the library's commands, started like the
service (startup.py). Their arguments and output are the library's (library/commands.py).

Both work against the configured database, also while the service runs. `explain` never queues or saves
anything; `scan --dry-run` neither, `scan` queues like a periodic rescan. The library modules are imported
when a command runs, so that `transcriptarr --help` stays quick.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from transcriptarr.library.commands import print_decision, print_report
from transcriptarr.startup import StartupError, open_storage

if TYPE_CHECKING:
    from transcriptarr.library.library import Library
    from transcriptarr.settings import Settings


def cmd_explain(settings: Settings, args: argparse.Namespace) -> int:
    path: Path = args.path.expanduser().absolute()
    if not path.exists():
        broken = f"is a broken symlink (to {path.readlink()}, which does not exist)" if path.is_symlink() else ""
        print(f"error: {path} {broken or 'does not exist'}", file=sys.stderr)
        return 1

    async def work(library: Library) -> int:
        decision = await library.explain(path)
        print_decision(str(path), decision)
        return 0

    return _with_library(settings, work)


def cmd_scan(settings: Settings, args: argparse.Namespace) -> int:
    if not settings.library_paths:
        print("error: LIBRARY_PATHS is empty; set it to the media folders to scan", file=sys.stderr)
        return 1

    async def work(library: Library) -> int:
        report = await library.scan(dry_run=args.dry_run)
        print_report(report)
        return 0

    return _with_library(settings, work)


LIBRARY_HANDLERS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "explain": cmd_explain,
    "scan": cmd_scan,
}


def _with_library(settings: Settings, work: Callable[[Library], Awaitable[int]]) -> int:
    from transcriptarr.library.config import LibraryConfig
    from transcriptarr.library.library import Library
    from transcriptarr.logs import configure_logging

    configure_logging(settings.log_level, settings.log_format)  # logs go to stderr, the answer to stdout

    async def go() -> int:
        try:
            async with open_storage(settings) as storage:
                return await work(Library(storage.db, storage.queue, LibraryConfig.from_settings(settings)))
        except StartupError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1

    return asyncio.run(go())
