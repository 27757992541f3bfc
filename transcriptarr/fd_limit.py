"""The open-files limit: raised at start-up from the soft limit to the hard one.

systemd and many container runtimes give a service a soft limit of 1,024 file descriptors and a far higher
hard limit that any process may raise itself to. Every HTTP connection, ffprobe/ffmpeg pipe and database
file takes one; at 1,024 a flood of connections once left none for ffprobe.
"""

from __future__ import annotations

import resource

import structlog

log = structlog.get_logger(__name__)

# Linux refuses an unlimited RLIMIT_NOFILE (fs.nr_open caps it); ask for this much when the hard limit is.
_UNLIMITED_TARGET = 1 << 20


def raise_open_files_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; the soft limit now (`service_started` shows it).

    Only a failure is logged, as a warning: the limit stays where it was."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = _UNLIMITED_TARGET if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            log.warning("open_files_limit", soft=soft, hard=hard, error=str(exc))
            return soft
        return target
    return soft
