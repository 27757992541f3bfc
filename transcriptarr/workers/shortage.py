"""Failures that are the service's own shortage (file descriptors, memory, processes), not the job's file.

When the process runs out of file descriptors, ffprobe and ffmpeg cannot even be started ("could not run
ffprobe: [Errno 24] Too many open files"). That says nothing about the file, so such a job is retried
later without counting the attempt: a long shortage must not fail a good file for good.
"""

from __future__ import annotations

import errno

SHORTAGE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS, errno.EAGAIN})
# A chain of causes longer than this is not followed (and a cycle cannot loop).
_MAX_DEPTH = 8


def service_shortage(exc: BaseException) -> OSError | None:
    """The OSError of a shortage behind `exc` (itself, its __cause__ or __context__, however wrapped), or None.

    `raise JobFailure(...) from None` hides the context from tracebacks but keeps it: it is followed too."""
    seen: BaseException | None = exc
    for _ in range(_MAX_DEPTH):
        if seen is None:
            return None
        if isinstance(seen, OSError) and seen.errno in SHORTAGE_ERRNOS:
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def shortage_reason(reason: str, shortage: OSError) -> str:
    """The job's error, saying that it is retried and why the attempt does not count."""
    what = shortage.strerror or str(shortage)
    return (
        f"{reason}; the service itself is short of resources ({what}), not the file: retried later without "
        "counting an attempt (raise the open-files limit, LimitNOFILE or `ulimit -n`, if this recurs)"
    )
