"""The arguments and the output of `transcriptarr explain PATH` and `transcriptarr scan [--dry-run]`.

    add_library_commands(commands)     # the sub-parsers object of the main parser (cli.py)

The commands themselves open the database like the service does, so they live in the composition
layer: transcriptarr/library_commands.py (LIBRARY_HANDLERS).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from transcriptarr.library.rules import Decision
    from transcriptarr.library.scanner import ScanReport


def add_library_commands(commands: Any) -> None:
    """Add `explain` and `scan` to the main parser's sub-commands."""
    explain = commands.add_parser("explain", help="why a media file would (not) be queued; queues nothing")
    explain.add_argument("path", type=Path)
    scan = commands.add_parser("scan", help="scan the library folders now and queue what needs subtitles")
    scan.add_argument("--dry-run", action="store_true", help="decide and print, but queue nothing")


# --- output ---------------------------------------------------------------------------


def print_decision(path: str, decision: Decision, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    verdict = f"queue ({_count(len(decision.jobs), 'job')})" if decision.queue else "do not queue"
    print(path, file=out)
    print(f"decision: {verdict}", file=out)
    print("because:", file=out)
    for number, reason in enumerate(decision.reasons, 1):
        print(f"  {number:>2}. {reason}", file=out)
    for target, task in decision.jobs:
        wanted = "in the audio's language" if target is None else f"in {target}"
        print(f"job: {task} -> subtitles {wanted}", file=out)


def print_report(report: ScanReport, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    mode = " (dry run: nothing queued or saved)" if report.dry_run else ""
    print(f"scanned {', '.join(report.folders) or 'nothing'}{mode}", file=out)
    print(
        f"{_count(report.media_files, 'media file')}: {report.unchanged} unchanged, "
        f"{len(report.decided)} decided, {_count(report.probes, 'ffprobe run')}, {report.seconds:.1f} s",
        file=out,
    )
    if report.dry_run:
        _section(out, "would queue", [_would_queue(path, d) for path, d in report.decided if d.queue])
    else:
        queued = [
            f"{a.path}  [{a.task}, target {a.target or 'audio language'}, priority {a.priority}] job {a.job_id}"
            for a in report.queued
        ]
        _section(out, "queued", queued)
        _section(
            out, "already queued or done", [f"{a.path}: {a.reason}" for a in report.actions if a.action == "exists"]
        )
        _section(out, "cancelled", [f"job {a.job_id} {a.path}: {a.reason}" for a in report.cancelled])
    _section(out, "not queued", [f"{path}: {d.summary}" for path, d in report.decided if not d.queue])
    _section(out, "still being written, decided once unchanged for a while", list(report.fresh))
    _section(out, "moved", [f"{old} -> {new}" for old, new in report.moved])
    _section(out, "gone from the index", [f"{path}: {why}" for path, why in report.removed])
    _section(out, "problems", report.problems)


def _would_queue(path: str, decision: Decision) -> str:
    jobs = ", ".join(f"{task} -> {target or 'audio language'}" for target, task in decision.jobs)
    why = "; ".join(r for r in decision.reasons if "to queue" in r)
    return f"{path}  [{jobs}]  because {why}"


def _section(out: TextIO, title: str, lines: list[str]) -> None:
    if not lines:
        return
    print(f"{title} ({len(lines)}):", file=out)
    for line in lines:
        print(f"  {line}", file=out)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
