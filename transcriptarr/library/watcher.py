"""File system events from the library folders, with watchfiles.

Folders are watched with inotify, or polled every N seconds where inotify delivers
nothing (NFS, SMB and many Docker bind mounts): for all folders (LIBRARY_POLLING)
or some (LIBRARY_POLLING_PATHS). The watcher never dies on its own:

- when the kernel's inotify watch limit is reached, it says how to raise
  `fs.inotify.max_user_watches` and polls those folders instead;
- any other failure (a folder missing at start-up, an unmounted share) is logged
  and the folders are watched again a little later.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

import structlog
from watchfiles import Change, awatch

from transcriptarr.library.config import WatchedPath

log = structlog.get_logger(__name__)

ChangeSet = set[tuple[Change, str]]
OnChanges = Callable[[ChangeSet], Awaitable[None]]

RAISE_WATCH_LIMIT = (
    "raise it on the host (not in the container): "
    "sysctl fs.inotify.max_user_watches=1048576, and to keep it after a reboot add "
    "'fs.inotify.max_user_watches=1048576' to /etc/sysctl.d/90-inotify.conf; "
    "or set LIBRARY_POLLING=true"
)
RAISE_INSTANCE_LIMIT = (
    "raise it on the host: sysctl fs.inotify.max_user_instances=1024 "
    "(and add it to /etc/sysctl.d/90-inotify.conf); or set LIBRARY_POLLING=true"
)


# watchfiles.awatch, or a stand-in with its signature (tests).
AwatchFunction = Callable[..., AsyncIterator[ChangeSet]]


@dataclass(frozen=True)
class WatchGroup:
    """Folders watched together by one watchfiles watcher."""

    paths: tuple[str, ...]
    polling: bool
    poll_interval: float


def watch_groups(watched: Sequence[WatchedPath]) -> list[WatchGroup]:
    """inotify folders share one watcher; every polled folder gets its own (its own interval)."""
    notify = tuple(str(w.path) for w in watched if not w.polling)
    groups = [WatchGroup(notify, False, 0.0)] if notify else []
    groups += [WatchGroup((str(w.path),), True, w.poll_interval) for w in watched if w.polling]
    return groups


def inotify_limit(exc: BaseException) -> str | None:
    """Which inotify limit an error from watchfiles means, if any: "watches" or "instances".

    watchfiles reports the watch limit as OSError("OS file watch limit reached ...") when
    adding watches, as a RuntimeError "... (os error 28)" / "No space left on device" while
    watching, and the instance limit as "Too many open files (os error 24)".
    """
    code = getattr(exc, "errno", None)
    text = str(exc).lower()
    if code == errno.ENOSPC or "watch limit" in text or "os error 28" in text or "no space left" in text:
        return "watches"
    if code == errno.EMFILE or "os error 24" in text or "too many open files" in text:
        return "instances"
    return None


class LibraryWatcher:
    def __init__(
        self,
        watched: Sequence[WatchedPath],
        on_changes: OnChanges,
        *,
        debounce_ms: int = 1600,
        retry_seconds: float = 30.0,
        fallback_poll_interval: float = 30.0,
        awatch_function: AwatchFunction = awatch,
    ) -> None:
        self.groups = watch_groups(watched)
        self.fallback_poll_interval = fallback_poll_interval
        self.on_changes = on_changes
        self.debounce_ms = debounce_ms
        self.retry_seconds = retry_seconds
        self._awatch = awatch_function
        self.ready = asyncio.Event()  # every group is watching
        self._ready_groups: set[int] = set()
        self.polling_fallbacks: list[WatchGroup] = []

    async def run(self, stop: asyncio.Event) -> None:
        if not self.groups:
            self.ready.set()
            return
        await asyncio.gather(*(self._keep_watching(i, group, stop) for i, group in enumerate(self.groups)))

    async def _keep_watching(self, number: int, group: WatchGroup, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self._watch(number, group, stop)
            except Exception as exc:  # the watcher must outlive any file system trouble
                group = await self._after_failure(group, exc, stop)

    async def _after_failure(self, group: WatchGroup, exc: Exception, stop: asyncio.Event) -> WatchGroup:
        limit = inotify_limit(exc)
        if limit is not None and not group.polling:
            fix = RAISE_WATCH_LIMIT if limit == "watches" else RAISE_INSTANCE_LIMIT
            log.error(
                "inotify_limit_reached",
                limit=f"fs.inotify.max_user_{limit}",
                folders=list(group.paths),
                error=str(exc),
                fix=fix,
                fallback="polling these folders instead",
            )
            polled = WatchGroup(group.paths, True, self.fallback_poll_interval)
            self.polling_fallbacks.append(polled)
            return polled
        log.error("watcher_failed", folders=list(group.paths), error=str(exc), retry_in_s=self.retry_seconds)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), self.retry_seconds)
        return group

    async def _watch(self, number: int, group: WatchGroup, stop: asyncio.Event) -> None:
        # awatch sets its stop event itself when cancelled: give it its own.
        halt = asyncio.Event()
        relay = asyncio.create_task(_relay(stop, halt))
        log.info(
            "watching_folders",
            folders=list(group.paths),
            mode="polling" if group.polling else "inotify",
            poll_interval_s=group.poll_interval if group.polling else None,
        )
        try:
            async for changes in self._awatch(
                *group.paths,
                watch_filter=None,
                stop_event=halt,
                debounce=self.debounce_ms,
                rust_timeout=1000,
                yield_on_timeout=True,  # an empty batch a second: tells us the watch is in place
                force_polling=group.polling,
                poll_delay_ms=int(group.poll_interval * 1000),
                ignore_permission_denied=True,
            ):
                self._mark_ready(number)
                if changes:
                    await self.on_changes(changes)
        finally:
            relay.cancel()
            self._ready_groups.discard(number)

    def _mark_ready(self, number: int) -> None:
        if number not in self._ready_groups:
            self._ready_groups.add(number)
            if len(self._ready_groups) == len(self.groups):
                self.ready.set()


async def _relay(stop: asyncio.Event, halt: asyncio.Event) -> None:
    await stop.wait()
    halt.set()
