"""SIGKILL chaos: kill the real service at every phase of its work, restart it, check nothing broke.

    report = run_chaos(workdir, database_url, kills=20)
    assert report.ok, report.problems()

A small library of real media (espeak-ng speech of 2-4 s in tiny videos, one with two
audio tracks, one with an untagged track that needs language detection) is transcribed
by the real service (`python -m transcriptarr run`, bundled tiny.en model) running as a
subprocess. Each start is killed with SIGKILL (the whole process group, as `docker kill`
does, ffmpeg included) at a moment aimed at one phase, in turn:

- `scan`: during the start-up scan of the library;
- `claim`: right after a worker claimed a job;
- `extracting_audio`, `transcribing`: while the job is in that stage;
- `writing`: while the subtitle is written (the harness watches the folder for the
  temporary file and kills the moment it appears);
- `storing`: after the subtitle is written, while the result is stored;
- `anytime`: at a random moment.

The phases are read from the service's JSON log lines (`job_started`, `job_stage`,
`subtitle_written`, `scan_started`), and each job phase waits for the first or second
such moment of the run, so that work moves on between kills. When fewer than two media
files are left to do, a new one is copied into the library before the next start.

Then the service runs until the queue is empty and is stopped cleanly, and the outcome
is checked (`ChaosReport`):

- lost: a media file without a completed job or without its subtitle;
- duplicated: two completed jobs for one media file and target, or two sidecars for it
  (a subtitle written again because the kill came after the write but before the result
  was stored is *rewritten*, not duplicated: the second write replaces the first);
- partial_files: a subtitle that is empty or does not parse as SRT;
- stuck: a job still queued or processing after the final run;
- leftovers: temporary subtitles next to the media, work files, spooled uploads;
- crashes: a start that exited by itself, or a final run that did not stop cleanly.

Timings: a start of the service takes about 2 s (imports, database); a job on a 3 s clip
about 1 s. Twenty kills run in about a minute on a 2-core machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import srt
from sqlalchemy import create_engine, func, inspect, select
from sqlalchemy.engine import Engine, make_url

from tests.media_factory import make_tone, make_video, speak
from transcriptarr.db.models import JobState
from transcriptarr.queue.jobqueue import JOBS
from transcriptarr.subtitles.writer import TEMP_MARKER

PHASES = ("scan", "claim", "extracting_audio", "transcribing", "writing", "storing", "anytime")
NODE = "chaos-node"
INITIAL_FILES = 5
MIN_PENDING = 2  # media files left to do before each start; fewer: one more is copied in

_LINES = (
    "The quick brown fox jumps over the lazy dog.",
    "Rivers carry water from the mountains to the sea.",
    "Good morning, the train to the city leaves at nine.",
)
_TRIGGER_TIMEOUT = 30.0  # seconds to wait for the moment a kill aims at
_STOP_TIMEOUT = 30.0
Event = dict[str, Any]


# --------------------------------------------------------------------------- the outcome


@dataclass
class ChaosReport:
    """What the chaos did and what it left; each list names the problem files or jobs."""

    kills: int
    jobs: int  # completed jobs at the end
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    partial_files: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)
    rewritten: list[str] = field(default_factory=list)  # not a problem: see the module docstring
    kills_by_phase: Counter[str] = field(default_factory=Counter)
    temp_files_left: int = 0  # kills after which a temporary subtitle lay in the library
    media_files: int = 0
    seconds: float = 0.0
    log_dir: Path | None = None

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.partial_files or self.stuck or self.leftovers or self.crashes)

    def result_line(self) -> str:
        return (
            f"RESULT kills={self.kills} jobs={self.jobs} lost={len(self.lost)} duplicated={len(self.duplicated)}"
            f" partial_files={len(self.partial_files)} stuck={len(self.stuck)} leftovers={len(self.leftovers)}"
            f" crashes={len(self.crashes)} rewritten={len(self.rewritten)}"
        )

    def describe(self) -> str:
        phases = ", ".join(f"{phase} {n}" for phase, n in sorted(self.kills_by_phase.items()))
        return (
            f"{self.kills} kills ({phases}); {self.media_files} media files, {self.jobs} completed jobs; "
            f"{self.temp_files_left} kills left a temporary subtitle in the library; "
            f"{len(self.rewritten)} subtitles rewritten after a kill; {self.seconds:.1f} s; logs in {self.log_dir}"
        )

    def problems(self) -> str:
        found = {
            "lost": self.lost,
            "duplicated": self.duplicated,
            "partial files": self.partial_files,
            "stuck": self.stuck,
            "leftovers": self.leftovers,
            "crashes": self.crashes,
        }
        lines = [f"{name}: {items}" for name, items in found.items() if items]
        return "\n".join([self.describe(), *lines])


# --------------------------------------------------------------------------- the media


def make_clips(folder: Path) -> list[Path]:
    """Three short clips to copy into the library: two tagged, one untagged and two tracks."""
    folder.mkdir(parents=True, exist_ok=True)
    speech = [speak(line, folder / f"line{i}.wav") for i, line in enumerate(_LINES)]
    tone = make_tone(folder / "tone.wav", 2.0)
    return [
        make_video(folder / "tagged.mkv", [(speech[0], "eng", True)]),
        # The speech is the default track; a music-like second track is there to be passed over.
        make_video(folder / "two-tracks.mp4", [(speech[1], "eng", True), (tone, "eng", False)]),
        # No language tag: the worker detects the language first (another stage to kill in).
        make_video(folder / "untagged.mkv", [(speech[2], None, True)]),
    ]


class Library:
    """The media folder the service watches; it grows by copies of the clips."""

    def __init__(self, root: Path, clips: list[Path]) -> None:
        self.root = root
        self.clips = clips
        self.added = 0
        root.mkdir(parents=True, exist_ok=True)

    def add(self) -> Path:
        clip = self.clips[self.added % len(self.clips)]
        self.added += 1
        # Half the files in a season folder, half at the top: two folders to scan and write in.
        folder = self.root / "Show" / "Season 1" if self.added % 2 else self.root
        folder.mkdir(parents=True, exist_ok=True)
        dest = folder / f"Episode {self.added:02d}{clip.suffix}"
        tmp = dest.with_name(f".{dest.name}.copying")  # hidden while copied: never seen half-written
        shutil.copyfile(clip, tmp)
        tmp.replace(dest)
        return dest

    def media(self) -> list[Path]:
        return sorted(p for p in self.root.rglob("*") if p.suffix in (".mkv", ".mp4") and not p.name.startswith("."))


# --------------------------------------------------------------------------- one start of the service


def service_env(database_url: str, library: Path, data_dir: Path, model_dir: Path) -> dict[str, str]:
    """Settings for a fast real run: tiny model, short clips welcome, quick recovery."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "TRANSCRIPTARR_MODE": "standalone",
        "LIBRARY_PATHS": str(library),
        "LIBRARY_MIN_DURATION_SECONDS": "0",
        "LIBRARY_STABLE_SECONDS": "0.5",
        "WHISPER_MODEL": "bundled:tiny.en",
        "WHISPER_DEVICE": "cpu",
        "WHISPER_THREADS": "1",
        "WORKERS": "1",
        "LEASE_SECONDS": "3",
        "MAX_RETRIES": "100",  # every kill counts an attempt of the job it hit
        "RETRY_BACKOFF_SECONDS": "0",
        "SHUTDOWN_GRACE_SECONDS": "10",
        "NODE_NAME": NODE,  # the same node each start: start-up recovery requeues its jobs at once
        "DATA_DIR": str(data_dir),
        "MODEL_DIR": str(model_dir),
        "HTTP_ENABLED": "false",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "info",
    }


class ServiceRun:
    """One start of `python -m transcriptarr run`: its process and its log lines as they come."""

    def __init__(self, env: dict[str, str], cwd: Path, log_path: Path) -> None:
        self.log_path = log_path
        self.events: queue.Queue[Event | None] = queue.Queue()  # None: the process closed its log
        self.process = subprocess.Popen(
            [sys.executable, "-m", "transcriptarr", "run"],
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: a kill takes ffmpeg along, as `docker kill` would
        )
        self._reader = threading.Thread(target=self._read, name="chaos-log-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        with self.log_path.open("wb") as log:
            for raw in self.process.stderr:
                log.write(raw)
                with contextlib.suppress(ValueError):
                    event = json.loads(raw)
                    if isinstance(event, dict):
                        self.events.put(event)
        self.events.put(None)

    def next_event(self, deadline: float) -> Event | None:
        """The next log line (as a dict), or None when the process ended or the deadline passed."""
        try:
            return self.events.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return None

    def wait_for(self, wanted: Callable[[Event], bool], timeout: float, *, count: int = 1) -> Event | None:
        """The `count`-th log line `wanted` accepts; None if the process ends or time runs out first."""
        deadline = time.monotonic() + timeout
        while (event := self.next_event(deadline)) is not None:
            if wanted(event):
                count -= 1
                if count == 0:
                    return event
        return None

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> bool:
        """SIGKILL the process group; False if the process had already ended by itself."""
        if not self.alive:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(_STOP_TIMEOUT)
        self._reader.join(_STOP_TIMEOUT)
        return True

    def stop(self) -> int:
        """SIGTERM, as a clean shutdown; the exit status."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            code = self.process.wait(_STOP_TIMEOUT + 10)
        except subprocess.TimeoutExpired:
            self.kill()
            return -1
        self._reader.join(_STOP_TIMEOUT)
        return code


# --------------------------------------------------------------------------- aiming the kills


def event_is(name: str, **fields: str) -> Callable[[Event], bool]:
    """Matches log lines of this event whose fields have these values."""
    return lambda e: e.get("event") == name and all(e.get(k) == v for k, v in fields.items())


def _temp_subtitles_in(folder: Path) -> set[str]:
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        return {entry.name for entry in entries if TEMP_MARKER in entry.name}
    return set()


class Aim:
    """Waits, in a running service, for the moment a kill of one phase should hit."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def wait(self, run: ServiceRun, phase: str) -> bool:
        """True when the moment came; False when it did not (the kill then lands wherever)."""
        nth = self.rng.choice((1, 1, 1, 2))  # now and then let one job finish first, so work moves on
        if phase == "scan":
            if run.wait_for(event_is("scan_started"), _TRIGGER_TIMEOUT) is None:
                return False
            self._pause(0.0, 0.4)  # the scan of a few files takes a few tenths of a second
            return True
        if phase == "anytime":
            self._pause(0.0, 2.5)
            return True
        if phase == "claim":
            return run.wait_for(event_is("job_started"), _TRIGGER_TIMEOUT, count=nth) is not None
        if phase == "storing":
            return run.wait_for(event_is("subtitle_written"), _TRIGGER_TIMEOUT, count=nth) is not None
        if phase == "transcribing":
            if run.wait_for(event_is("job_stage", stage="transcribing"), _TRIGGER_TIMEOUT, count=nth) is None:
                return False
            self._pause(0.0, 0.5)
            return True
        if phase == "writing":
            event = run.wait_for(event_is("job_stage", stage="writing"), _TRIGGER_TIMEOUT, count=nth)
            if event is None:
                return False
            self._catch_temp_file(Path(str(event.get("path"))).parent)
            return True
        return run.wait_for(event_is("job_stage", stage=phase), _TRIGGER_TIMEOUT, count=nth) is not None

    def _pause(self, low: float, high: float) -> None:
        # Not synchronisation: a random moment within the phase is the point of the exercise.
        time.sleep(self.rng.uniform(low, high))

    def _catch_temp_file(self, folder: Path) -> None:
        """Spin until a new temporary subtitle shows (then the kill hits mid-write) or half a second passed."""
        earlier = _temp_subtitles_in(folder)  # left by earlier kills: not this write's
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            if _temp_subtitles_in(folder) - earlier:
                return


# --------------------------------------------------------------------------- checking the outcome


def sync_engine(database_url: str) -> Engine:
    """The harness's own view of the service's database (a user-style URL), through a blocking driver."""
    url = make_url(database_url)
    backend = "mariadb" if url.get_backend_name() in ("mysql", "mariadb") else url.get_backend_name()
    return create_engine(url.set(drivername=_SYNC_DRIVERS[backend]))


_SYNC_DRIVERS = {"sqlite": "sqlite+pysqlite", "postgresql": "postgresql+psycopg2", "mariadb": "mariadb+pymysql"}
_LIVE_STATES = (JobState.QUEUED, JobState.PROCESSING)


def has_jobs_table(engine: Engine) -> bool:
    with engine.connect() as conn:
        return inspect(conn).has_table(JOBS.name)


def completed_paths(engine: Engine) -> set[str]:
    """Media files with a completed job."""
    if not has_jobs_table(engine):
        return set()
    with engine.connect() as conn:
        return {row[0] for row in conn.execute(select(JOBS.c.media_path).where(JOBS.c.state == JobState.COMPLETED))}


def unfinished_jobs(engine: Engine) -> int:
    """Jobs queued or processing (1 before the service created its tables)."""
    if not has_jobs_table(engine):
        return 1
    with engine.connect() as conn:
        query = select(func.count()).select_from(JOBS).where(JOBS.c.state.in_(_LIVE_STATES))
        return int(conn.execute(query).scalar_one())


def check_outcome(report: ChaosReport, library: Library, engine: Engine, data_dir: Path, logs: Path) -> None:
    """Fill in what the library, the queue and the data folder show once the service stopped."""
    media = library.media()
    report.media_files = len(media)
    with engine.connect() as conn:
        jobs = conn.execute(
            select(JOBS.c.id, JOBS.c.state, JOBS.c.media_path, JOBS.c.content_key, JOBS.c.result_path)
        ).all()
    completed = [job for job in jobs if job.state == JobState.COMPLETED]
    report.jobs = len(completed)
    per_key = Counter(job.content_key for job in completed)
    report.duplicated += [f"{key}: {n} completed jobs" for key, n in per_key.items() if n > 1]
    report.stuck += [f"job {j.id} ({j.media_path}) is {j.state}" for j in jobs if j.state in _LIVE_STATES]
    by_path = {job.media_path: job for job in completed}
    writes = subtitle_writes(logs)
    for path in media:
        job = by_path.get(str(path))
        if job is None:
            states = sorted(str(j.state) for j in jobs if j.media_path == str(path))
            report.lost.append(f"{path}: no completed job (its jobs: {states or 'none'})")
        elif not job.result_path or not Path(job.result_path).is_file():
            report.lost.append(f"{path}: job {job.id} completed without its subtitle ({job.result_path})")
        subtitles = sorted(path.parent.glob(f"{_glob_escape(path.stem)}.*.srt"))
        if len(subtitles) > 1:
            report.duplicated.append(f"{path}: {len(subtitles)} sidecars {[s.name for s in subtitles]}")
        report.partial_files += [f"{s}: {problem}" for s in subtitles if (problem := _subtitle_problem(s))]
        if writes[str(path)] > 1:
            report.rewritten.append(f"{path.name}: written {writes[str(path)]} times")
    report.leftovers += [str(p) for p in _leftovers(library.root, data_dir)]


def subtitle_writes(logs: Path) -> Counter[str]:
    """`subtitle_written` lines per media file, over every start of the service."""
    writes: Counter[str] = Counter()
    for log in sorted(logs.glob("run-*.jsonl")):
        for line in log.read_bytes().splitlines():
            if b'"subtitle_written"' in line:
                with contextlib.suppress(ValueError):
                    writes[json.loads(line).get("path")] += 1
    return writes


def _leftovers(library: Path, data_dir: Path) -> Iterator[Path]:
    """Temporary subtitles and partial files in the library; work files and spooled uploads."""
    for path in library.rglob("*"):
        if TEMP_MARKER in path.name or path.name.endswith((".tmp", ".part")):
            yield path
    for folder in ("work", "spool"):
        if (data_dir / folder).is_dir():
            yield from (p for p in (data_dir / folder).rglob("*") if p.is_file())


def _glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[]" else c for c in text)


def _subtitle_problem(path: Path) -> str | None:
    """Why a subtitle is not whole, or None."""
    try:
        text = path.read_text(encoding="utf-8")
        cues = list(srt.parse(text, ignore_errors=False))
    except (OSError, ValueError, srt.SRTParseError) as exc:
        return f"does not parse: {exc}"
    if not any(cue.content.strip() for cue in cues):
        return "has no cues"
    if not text.endswith("\n"):
        return "is cut short (no final newline)"
    return None


# --------------------------------------------------------------------------- the run


class Chaos:
    """A library, a database and the starts of the service on them."""

    def __init__(self, workdir: Path, database_url: str, rng: random.Random) -> None:
        self.rng = rng
        self.library = Library(workdir / "library", make_clips(workdir / "clips"))
        for _ in range(INITIAL_FILES):
            self.library.add()
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.logs = workdir / "logs"
        self.logs.mkdir(exist_ok=True)
        self.env = service_env(database_url, self.library.root, self.data_dir, workdir / "models")
        self.engine = sync_engine(database_url)
        self.report = ChaosReport(kills=0, jobs=0, log_dir=self.logs)
        self.starts = 0

    def start(self) -> ServiceRun:
        self.starts += 1
        return ServiceRun(self.env, self.workdir, self.logs / f"run-{self.starts:03d}.jsonl")

    def kill_repeatedly(self, kills: int) -> None:
        aim = Aim(self.rng)
        phases = list(PHASES)
        while self.report.kills < kills:
            if self.report.kills % len(phases) == 0:
                self.rng.shuffle(phases)  # every phase once per round, in a new order each round
            phase = phases[self.report.kills % len(phases)]
            done = completed_paths(self.engine)
            while sum(1 for path in self.library.media() if str(path) not in done) < MIN_PENDING:
                self.library.add()
            run = self.start()
            hit = aim.wait(run, phase)
            if run.kill():
                self.report.kills += 1
                self.report.kills_by_phase[phase if hit else f"{phase} (missed)"] += 1
                self.report.temp_files_left += any(TEMP_MARKER in p.name for p in self.library.root.rglob("*"))
            else:
                self.report.crashes.append(f"{run.log_path.name}: exited by itself with {run.process.returncode}")

    def finish(self, timeout: float) -> None:
        """Start once more, run until nothing is left to do, then stop cleanly."""
        run = self.start()
        if run.wait_for(event_is("scan_finished"), timeout) is None:
            self.report.crashes.append(f"{run.log_path.name}: the final run never finished its start-up scan")
        if not wait_until_idle(self.engine, run, timeout):
            self.report.stuck.append(f"the queue was not empty {timeout:g} s after the final start")
        code = run.stop()
        if code != 0:
            self.report.crashes.append(f"{run.log_path.name}: the final run stopped with exit status {code}")


def wait_until_idle(engine: Engine, run: ServiceRun, timeout: float, *, quiet: float = 1.5) -> bool:
    """Poll until nothing was queued or running for `quiet` seconds (the watcher has seen the new subtitles)."""
    deadline = time.monotonic() + timeout
    quiet_since: float | None = None
    while time.monotonic() < deadline and run.alive:
        if unfinished_jobs(engine) == 0:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= quiet:
                return True
        else:
            quiet_since = None
        time.sleep(0.2)
    return False


def run_chaos(
    workdir: Path,
    database_url: str,
    *,
    kills: int = 20,
    seed: int | None = None,
    final_timeout: float = 180.0,
) -> ChaosReport:
    """Kill the service `kills` times at aimed moments, let it finish, check the library and the queue.

    `database_url` is user-style (as in DATABASE_URL) and names an empty database; `workdir`
    an empty folder (media, data and logs go there).
    """
    started = time.monotonic()
    chaos = Chaos(workdir, database_url, random.Random(seed))
    try:
        chaos.kill_repeatedly(kills)
        chaos.finish(final_timeout)
        check_outcome(chaos.report, chaos.library, chaos.engine, chaos.data_dir, chaos.logs)
    finally:
        chaos.engine.dispose()
    chaos.report.seconds = time.monotonic() - started
    return chaos.report
