"""Work redone after a SIGKILL: a two-minute transcription killed part-way, restarted, compared with an unbroken run.

    measured = measure_resume(workdir, kill_at=0.65)
    measured.second_attempt_ratio  # audio the attempt after the restart transcribed / the audio's duration
    measured.redone_ratio          # audio transcribed over both attempts / duration (1.0: nothing redone)

The real service (`python -m transcriptarr run`, bundled tiny.en, one thread so that the
kill can be aimed, decoding at temperature 0 without fallback so that the words are
the same on every run) transcribes one ~2-minute file (tests/data/jfk.flac between
espeak-ng sentences, pauses between them) twice, each time on its own SQLite database:

- unbroken: it runs to the end;
- killed: the harness polls the job's progress in the database and SIGKILLs the whole
  process group once it reaches `kill_at`, then starts the service again, which recovers
  the job (same node name) and finishes it from its checkpoint.

Used by tests/faults/test_resume_after_kill.py and benchmarks/chaos_bench.py.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from tests.faults.chaos import ServiceRun, service_env, sync_engine
from tests.media_factory import concat_audio, fixture_path, make_silence, make_video, speak
from transcriptarr.db.models import JobState
from transcriptarr.queue.jobqueue import JOBS

CHECKPOINT_SECONDS = 5.0  # the setting of these runs: checkpoints close together on a short file
SENTENCES = (
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Good morning, the train to the city leaves at nine o'clock sharp.",
    "Rivers carry water from the mountains all the way down to the sea.",
    "She sells sea shells by the sea shore every summer afternoon.",
    "The library opens at ten and closes at six on weekdays.",
    "Please remember to bring your umbrella because it may rain later today.",
    "A journey of a thousand miles begins with a single step.",
    "The children played football in the park until the sun went down.",
    "My grandmother bakes fresh bread every Sunday morning for the whole family.",
    "The museum downtown has a new exhibition about ancient Egypt.",
    "Our neighbours painted their front door a bright shade of yellow.",
    "The pilot announced that we would land twenty minutes early.",
    "Fresh snow covered the hills and the roads were quiet all night.",
    "He wrote a long letter to his brother who lives across the ocean.",
    "The orchestra played until midnight and nobody wanted to leave.",
)
_START_TIMEOUT = 120.0


@dataclass
class Run:
    seconds: float  # processing_seconds of the attempt that completed the job
    words: list[str]  # of the subtitle written, normalised
    progress_at_kill: float | None = None  # 0..1
    resumed_from: float | None = None  # seconds of audio the checkpoint had done


@dataclass
class ResumeMeasurement:
    duration: float
    unbroken: Run
    killed: Run
    logs: list[Path] = field(default_factory=list)

    @property
    def second_attempt_ratio(self) -> float:
        """Audio the attempt after the restart transcribed, as a fraction of the whole."""
        return (self.duration - (self.killed.resumed_from or 0.0)) / self.duration

    @property
    def second_attempt_time_ratio(self) -> float:
        return self.killed.seconds / self.unbroken.seconds

    @property
    def redone_ratio(self) -> float:
        """Audio transcribed over both attempts / the duration: 1.0 when nothing was done twice."""
        assert self.killed.progress_at_kill is not None
        return self.killed.progress_at_kill + self.second_attempt_ratio

    def word_diff(self) -> str:
        """Where the resumed run's words differ from the unbroken run's."""
        return _diff(self.unbroken.words, self.killed.words)

    def describe(self) -> str:
        return (
            f"RESUME duration={self.duration:.1f}s killed_at={self.killed.progress_at_kill:.0%} "
            f"resumed_from={self.killed.resumed_from}s second_attempt_audio={self.second_attempt_ratio:.2f} "
            f"second_attempt_time={self.second_attempt_time_ratio:.2f} redone={self.redone_ratio:.2f} "
            f"wer={word_error_rate(self.unbroken.words, self.killed.words):.3f}"
        )


def _diff(before: list[str], after: list[str]) -> str:
    lines = difflib.unified_diff(before, after, "unbroken", "killed and resumed", lineterm="", n=2)
    return "\n".join(lines)


def make_media(folder: Path) -> Path:
    """About two minutes of speech: jfk.flac and espeak-ng sentences, with a pause after each."""
    folder.mkdir(parents=True, exist_ok=True)
    pause = make_silence(folder / "pause.wav", 1.2)
    parts: list[Path] = []
    for i in range(0, len(SENTENCES), 3):
        parts += [fixture_path("jfk.flac"), pause]
        for j, sentence in enumerate(SENTENCES[i : i + 3]):
            parts += [speak(sentence, folder / f"sentence-{i + j}.wav"), pause]
    audio = concat_audio(folder / "speech.wav", parts)
    return make_video(folder / "Two Minutes.mkv", [(audio, "eng", True)])


def normalise(text: str) -> list[str]:
    return re.sub(r"[^\w\s']", " ", text.lower()).split()


def subtitle_words(path: Path) -> list[str]:
    """The words of an SRT file, without numbers and timings."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return normalise(" ".join(line for line in lines if line.strip() and "-->" not in line and not line.isdigit()))


def word_error_rate(reference: list[str], hypothesis: list[str]) -> float:
    """(substitutions + insertions + deletions) / words of `reference` (Levenshtein over words)."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        current = [i]
        for j, hyp in enumerate(hypothesis, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref != hyp)))
        previous = current
    return previous[-1] / max(1, len(reference))


class _Service:
    """The service on one library, data folder and SQLite database."""

    def __init__(self, workdir: Path, media: Path, model_dir: Path) -> None:
        library = workdir / "library"
        library.mkdir(parents=True)
        self.media = library / media.name
        self.media.write_bytes(media.read_bytes())
        url = f"sqlite:///{workdir / 'queue.db'}"
        self.env = {
            **service_env(url, library, workdir / "data", model_dir),
            "QUALITY": "balanced",
            "WHISPER_EXTRA_ARGS": json.dumps({"temperature": 0.0}),
            "CHECKPOINT_SECONDS": str(CHECKPOINT_SECONDS),
            "WORKER_NICE": "0",
        }
        self.workdir = workdir
        self.engine: Engine = sync_engine(url)
        self.starts = 0
        self.logs: list[Path] = []

    def start(self) -> ServiceRun:
        self.starts += 1
        log = self.workdir / f"run-{self.starts}.jsonl"
        self.logs.append(log)
        return ServiceRun(self.env, self.workdir, log)

    def job(self) -> Any:
        with contextlib.suppress(Exception), self.engine.connect() as conn:  # tables not made yet
            return conn.execute(select(JOBS).where(JOBS.c.media_path == str(self.media))).first()
        return None

    def wait(self, run: ServiceRun, done: Any, what: str, timeout: float) -> Any:
        """Poll the job until `done(job)`; fails naming `what` when the service ends or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and run.alive:
            job = self.job()
            if job is not None and done(job):
                return job
            time.sleep(0.1)
        run.kill()
        raise AssertionError(f"{what} did not happen within {timeout:g} s; logs: {self.logs}")

    def finish(self, run: ServiceRun, timeout: float) -> Run:
        job = self.wait(run, lambda j: j.state in (JobState.COMPLETED, JobState.FAILED), "the job's end", timeout)
        run.stop()
        assert job.state == JobState.COMPLETED and job.result_path, f"job ended {job.state}: {job.error}"
        return Run(seconds=float(job.processing_seconds), words=subtitle_words(Path(job.result_path)))


def transcribe_unbroken(workdir: Path, media: Path, timeout: float = 900.0) -> tuple[Run, list[Path]]:
    """The reference: the file transcribed from start to end by one start of the service."""
    service = _Service(workdir / "unbroken", media, workdir / "models")
    try:
        return service.finish(service.start(), timeout), service.logs
    finally:
        service.engine.dispose()


def measure_interrupted(
    workdir: Path,
    media: Path,
    unbroken: Run,
    *,
    kill_at: float = 0.65,
    stop_with: str = "sigkill",
    timeout: float = 900.0,
) -> ResumeMeasurement:
    """The same file stopped once its progress passed `kill_at`, then restarted and finished.

    `stop_with`: "sigkill" kills the process group (a crash, `docker kill`); "sigterm" is a clean stop whose
    grace (1 s) is too short for the job to finish, so the job is handed back and its checkpoint kept.
    """
    service = _Service(workdir / stop_with, media, workdir / "models")
    if stop_with == "sigterm":
        service.env["SHUTDOWN_GRACE_SECONDS"] = "1"
    try:
        run = service.start()
        job = service.wait(
            run, lambda j: j.stage == "transcribing" and j.progress >= 100 * kill_at, "the stop point", timeout
        )
        if stop_with == "sigterm":
            code = run.stop()
            assert code == 0, f"SIGTERM: the service exited with {code}; logs: {service.logs}"
        else:
            run.kill()
        # The last progress written before the stop; a job handed back at a clean stop has its progress reset,
        # so then the value seen just before the stop counts.
        progress = max(float(job.progress), float(service.job().progress)) / 100
        run = service.start()
        interrupted = service.finish(run, timeout)
        job = service.job()
        interrupted.progress_at_kill = progress
        interrupted.resumed_from = (job.details or {}).get("resumed_from_seconds")
        duration = float(job.media_duration)
    finally:
        service.engine.dispose()
    return ResumeMeasurement(duration, unbroken, interrupted, service.logs)


def measure_resume(workdir: Path, *, kill_at: float = 0.65, timeout: float = 900.0) -> ResumeMeasurement:
    """Transcribe the file unbroken, then again with a SIGKILL at `kill_at` (fraction of the progress) and a restart."""
    media = make_media(workdir / "media")
    unbroken, logs = transcribe_unbroken(workdir, media, timeout)
    measured = measure_interrupted(workdir, media, unbroken, kill_at=kill_at, timeout=timeout)
    measured.logs[:0] = logs
    return measured
