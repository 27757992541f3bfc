"""A self-contained demonstration: make a tiny media library, subtitle it, show the result.

    python -m transcriptarr.demo [--library DIR] [--reuse] [--verbose]

The library (``demo-library/`` in the checkout unless ``--library`` says
otherwise) gets a few short videos and an audio file whose speech is
synthesised with espeak-ng and muxed with ffmpeg; one video carries an English
and a German audio track. The files are queued through the job queue, the
service runs once over the queue (as ``transcriptarr run --once`` does) with the
bundled tiny.en Whisper model on the CPU, and every subtitle written is shown.

Nothing outside the library folder is read or written: the queue database,
the work files and the model folder live in ``<library>/.transcriptarr-demo/``,
and the user's environment variables and ``.env`` are ignored. No network, no
GPU. Each run starts over (the demo's own files are deleted and made again);
``--reuse`` keeps them, so the queue recognises the finished work instead.

Exit status: 0 every file got its subtitle, 1 a job failed (its error is
printed), 2 a prerequisite is missing or the media could not be made.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transcriptarr.db.models import Job, JobState, Source
from transcriptarr.queue.jobqueue import EnqueueResult, NewJob
from transcriptarr.settings import Settings, load_settings
from transcriptarr.startup import StartupError, open_storage

STATE_DIR = ".transcriptarr-demo"
MODEL = "bundled:tiny.en"
PREVIEW_LINES = 8
SUBTITLE_SUFFIXES = frozenset({".srt", ".vtt", ".ass", ".lrc"})
VIDEO_SUFFIXES = frozenset({".mkv", ".mp4"})
TOOLS = ("ffmpeg", "ffprobe", "espeak-ng")
_FFMPEG = ("ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y")


class DemoError(Exception):
    """The demo cannot go on; the message says why."""


@dataclass(frozen=True)
class Speech:
    """One audio track: what espeak-ng says, in which voice, and the track's language tag."""

    text: str
    voice: str = "en-us"
    language: str | None = None
    title: str | None = None


@dataclass(frozen=True)
class DemoFile:
    name: str
    tracks: tuple[Speech, ...]

    @property
    def is_video(self) -> bool:
        return Path(self.name).suffix.lower() in VIDEO_SUFFIXES


DEMO_FILES: tuple[DemoFile, ...] = (
    DemoFile(
        "The Lighthouse Keeper (2021).mkv",
        (
            Speech(
                "The old lighthouse keeper climbed the stairs every evening to light the lamp. "
                "Ships on the dark ocean followed its bright signal home. "
                "Tonight a terrible storm was coming from the north.",
                language="eng",
                title="English",
            ),
            Speech(
                "Der alte Leuchtturmwärter stieg jeden Abend die Treppe hinauf. "
                "Die Schiffe auf dem dunklen Meer folgten seinem hellen Licht nach Hause.",
                voice="de",
                language="ger",
                title="Deutsch",
            ),
        ),
    ),
    DemoFile(
        "Night Train - S01E01 - Departure.mp4",
        (
            Speech(
                "The passengers boarded the last train to the mountains. "
                "Nobody noticed that the conductor was missing. "
                "At midnight the lights went out in the dining car.",
                language="eng",
            ),
        ),
    ),
    DemoFile(
        "Honey Bees.mkv",
        (
            Speech(
                "Honey bees visit thousands of flowers every day. "
                "They carry pollen back to the hive and turn nectar into honey. "
                "A healthy colony can have more than fifty thousand bees.",
            ),
        ),
    ),
    DemoFile(
        "Garden Podcast - Episode 12.mp3",
        (
            Speech(
                "Hello and welcome back to the garden podcast. "
                "This week we talk about planting tomatoes in the spring. "
                "Water them in the morning and give them plenty of sunshine.",
            ),
        ),
    ),
)


# --- the library -------------------------------------------------------------


def default_library() -> Path:
    """``demo-library/`` at the root of the checkout, or in the current folder for an installed package."""
    checkout = Path(__file__).resolve().parents[1]
    root = checkout if (checkout / "pyproject.toml").is_file() else Path.cwd()
    return root / "demo-library"


def remove_demo_files(library: Path) -> None:
    """Delete what an earlier demo run made here, and nothing else."""
    shutil.rmtree(library / STATE_DIR, ignore_errors=True)
    for spec in DEMO_FILES:
        media = library / spec.name
        sidecars = [p for p in library.glob(f"{glob.escape(media.stem)}.*") if p.suffix in SUBTITLE_SUFFIXES]
        for path in [media, partial_path(media), *sidecars]:
            path.unlink(missing_ok=True)


def make_library(library: Path) -> list[Path]:
    """The demo's media files, made where missing."""
    (library / STATE_DIR).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=library / STATE_DIR, prefix="build-") as scratch:
        for spec in DEMO_FILES:
            dest = library / spec.name
            if not dest.is_file():
                make_media(spec, dest, Path(scratch))
    return [library / spec.name for spec in DEMO_FILES]


def make_media(spec: DemoFile, dest: Path, scratch: Path) -> None:
    wavs = [speak(speech, scratch / f"{dest.stem}.{n}.wav") for n, speech in enumerate(spec.tracks)]
    partial = partial_path(dest)
    if spec.is_video:
        mux_video(partial, wavs, spec.tracks)
    else:
        run_tool([*_FFMPEG, "-i", str(wavs[0]), "-ac", "1", str(partial)])
    partial.replace(dest)


def partial_path(media: Path) -> Path:
    """Where a media file is made before it gets its name, so that no half-made file is ever queued."""
    return media.with_name(f".{media.stem}.demo-tmp{media.suffix}")


def speak(speech: Speech, dest: Path) -> Path:
    run_tool(["espeak-ng", "-v", speech.voice, "-s", "160", "-w", str(dest), speech.text])
    return dest


def wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as audio:
        return audio.getnframes() / audio.getframerate()


def mux_video(dest: Path, wavs: Sequence[Path], tracks: Sequence[Speech]) -> None:
    """A tiny test-pattern video as long as its longest track, one audio stream per track."""
    seconds = max(wav_seconds(wav) for wav in wavs) + 0.5
    args = [*_FFMPEG, "-f", "lavfi", "-i", f"testsrc=size=128x72:rate=5:duration={seconds:.2f}"]
    for wav in wavs:
        args += ["-i", str(wav)]
    args += ["-map", "0:v", *[arg for n in range(len(wavs)) for arg in ("-map", f"{n + 1}:a")]]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "1"]
    for n, track in enumerate(tracks):
        args += [f"-disposition:a:{n}", "default" if n == 0 else "0"]
        if track.language:
            args += [f"-metadata:s:a:{n}", f"language={track.language}"]
        if track.title:
            args += [f"-metadata:s:a:{n}", f"title={track.title}"]
    run_tool([*args, "-t", f"{seconds:.2f}", str(dest)])


def run_tool(args: Sequence[str]) -> None:
    done = subprocess.run(list(args), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise DemoError(f"{args[0]} failed (exit status {done.returncode}): {done.stderr.strip()}")


# --- the service ---------------------------------------------------------------


def demo_settings(library: Path, *, verbose: bool) -> Settings:
    """Every setting at its default except the demo's own; environment and .env are not consulted."""
    state = library / STATE_DIR
    values: dict[str, Any] = {
        name: field.get_default(call_default_factory=True) for name, field in Settings.model_fields.items()
    }
    values.update(
        database_url=f"sqlite:///{state / 'demo.db'}",
        data_dir=state / "data",
        model_dir=state / "models",
        whisper_model=MODEL,
        whisper_device="cpu",
        workers=1,
        offline=True,
        max_retries=0,  # a failure is reported at once instead of being retried later
        whisper_extra_args={"temperature": 0.0},  # no random fallback: every run of the demo hears the same words
        log_level="info" if verbose else "warning",
        log_format="console",
    )
    return load_settings(_env_file=None, **values)


async def enqueue(settings: Settings, media: Sequence[Path]) -> list[EnqueueResult]:
    """Queue every file as `transcriptarr enqueue` does; work already done and unchanged is not queued again."""
    async with open_storage(settings) as storage:
        queue = storage.queue
        results = []
        for path in media:
            stat = path.stat()
            new = NewJob(
                source=Source.MANUAL,
                media_path=str(path),
                media_size=stat.st_size,
                media_mtime=stat.st_mtime,
                quality=settings.quality,
            )
            result = await queue.enqueue(new)
            print(f"  job {result.job.id}: {result.reason}  {path.name}")
            results.append(result)
        return results


async def read_jobs(settings: Settings, ids: Sequence[int]) -> list[Job]:
    async with open_storage(settings) as storage:
        return [await storage.queue.get(job_id) for job_id in ids]


async def run_once(settings: Settings, media: Sequence[Path]) -> tuple[list[Job], int]:
    """Queue the media and run the service until the queue is empty (`run --once`).

    Returns the finished jobs and how many of them were done by an earlier run.
    """
    from transcriptarr.service import run_service  # loads faster-whisper: only once the media exist

    queued = await enqueue(settings, media)
    print(f"Running the service once over the queue (model {settings.whisper_model} on the CPU) ...")
    await run_service(settings, once=True)
    jobs = await read_jobs(settings, [result.job.id for result in queued])
    if any(job.state in (JobState.QUEUED, JobState.PROCESSING) for job in jobs):
        raise DemoError("the service stopped before the queue was empty; see its log above")
    earlier = sum(1 for result in queued if result.job.state == JobState.COMPLETED)
    return jobs, earlier


# --- the report ----------------------------------------------------------------


def report_job(job: Job) -> bool:
    """Print what one job produced, or why it produced nothing; True when it wrote a subtitle."""
    media = Path(job.media_path or "?").name
    if job.state != JobState.COMPLETED:
        print(f"\nFAILED  job {job.id} ({job.state}): {media}")
        print(textwrap.indent(job.error or "no error recorded", "  "))
        return False
    if not job.result_path:
        print(f"\nSKIPPED  job {job.id}: {media}\n  {job.details.get('skipped', 'no subtitle was written')}")
        return False
    subtitle = Path(job.result_path)
    if not subtitle.is_file():
        print(f"\nMISSING  job {job.id}: {subtitle} was written once but is gone; run the demo without --reuse")
        return False
    print(f"\nsubtitle: {subtitle}")
    print(f"  {describe(job)}")
    for line in subtitle.read_text(encoding="utf-8").splitlines()[:PREVIEW_LINES]:
        print(f"    {line}")
    return True


def describe(job: Job) -> str:
    track = job.details.get("audio_track") or {}
    how = job.details.get("language_from", "detected")
    audio = f"{job.media_duration:.1f} s of audio" if job.media_duration else "audio"
    took = f" in {job.processing_seconds:.1f} s" if job.processing_seconds else ""
    return (
        f"job {job.id}: audio track #{track.get('index', '?')} ({track.get('language') or 'untagged'}), "
        f"language {job.source_language} ({how}), {audio}{took}"
    )


def summary(jobs: Sequence[Job], written: int, earlier: int, wall_seconds: float) -> str:
    done = [job for job in jobs if job.processing_seconds and job.media_duration]
    processing = sum(job.processing_seconds or 0.0 for job in done)
    audio = sum(job.media_duration or 0.0 for job in done)
    rtf = f"{processing / audio:.2f} ({processing:.1f} s processing / {audio:.1f} s audio)" if audio else "n/a"
    failed = len(jobs) - written
    reused = f" ({earlier} from an earlier run)" if earlier else ""
    return (
        f"Summary: {len(jobs)} media files, {written} subtitles{reused}, {failed} failed; "
        f"wall time {wall_seconds:.1f} s; real-time factor {rtf}"
    )


# --- the command -------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m transcriptarr.demo", description="Make a tiny demo library and subtitle it."
    )
    parser.add_argument("--library", type=Path, default=None, help="demo folder (default: demo-library/)")
    parser.add_argument("--reuse", action="store_true", help="keep the media and queue of an earlier run")
    parser.add_argument("--verbose", action="store_true", help="show the service's log")
    return parser


def check_tools() -> None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        raise DemoError(f"missing programs: {', '.join(missing)} (Debian: apt-get install ffmpeg espeak-ng)")


def run(library: Path, *, reuse: bool, verbose: bool) -> int:
    started = time.monotonic()
    check_tools()
    if not reuse:
        remove_demo_files(library)
    print(f"Demo library: {library}")
    media = make_library(library)
    print(f"  {len(media)} media files ready ({time.monotonic() - started:.1f} s)")
    settings = demo_settings(library, verbose=verbose)
    jobs, earlier = asyncio.run(run_once(settings, media))
    written = sum(report_job(job) for job in jobs)
    print()
    print(summary(jobs, written, earlier, time.monotonic() - started))
    return 0 if written == len(jobs) else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    library = (args.library or default_library()).expanduser().resolve()
    try:
        return run(library, reuse=args.reuse, verbose=args.verbose)
    except (DemoError, StartupError) as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
