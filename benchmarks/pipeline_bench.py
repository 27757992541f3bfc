"""Service overhead: the whole Transcriptarr pipeline against a bare faster-whisper call.

    python benchmarks/pipeline_bench.py [--minutes M (3)] [--audio FILE] [--preset balanced]
        [--repeats N (2)] [--threads T (0)] [--workdir DIR] [--no-batched] [--plain-bare]

It builds a speech file of about M minutes from distinct espeak-ng sentences (or takes
--audio), muxes it into an .mkv with a tiny video track, and then, in one process, with
the same model (bundled tiny.en, int8 on the CPU), preset and thread count, measures:

* bare: the .mkv decoded by ffmpeg to 16 kHz mono PCM (the very samples the service
  extracts), then ``model.transcribe`` (the batched pipeline for a batched preset) with
  ``preset.transcribe_kwargs()`` and every segment consumed. Decoding is included because
  the service pays for its own probe and extraction.
* service: ``queue.enqueue`` of the .mkv (Source.MANUAL) and ``pool.run(once=True)``, from
  the enqueue call until the job is recorded as completed (its subtitle written), with the
  time of each step taken from the service's own log events.

Meanwhile a coroutine on the event loop wakes every 10 ms and records how late it wakes:
the largest lag is the longest event-loop stall. It ticks during the bare run as well (run
in a worker thread), so both sides pay for it and the bare side gives the stall baseline
of this machine. On Linux the worst stall is split into the loop thread's own running,
its waiting for a CPU (other processes), and the rest (GIL or blocking I/O).

The bare model is a second instance built by the service's own WhisperLoader: the same
WhisperModel arguments, loaded the same way (today its compute threads run at a lowered OS
priority, which slows them only while other processes want the CPUs); --plain-bare calls
WhisperModel() directly instead. Model loading is excluded from both: each model first
transcribes a short clip (for the service, one warm-up job; it keeps its model loaded).
Every repeat uses a new hard link of the .mkv (the queue would otherwise skip a file it
has already done), the order of each pair alternates, and medians are reported. Wall
times suffer from anything else running on the machine: the ratio of the fastest runs
and that of CPU time are printed too.

Then, for the ``fast`` preset: BatchedInferencePipeline against ``model.transcribe`` with
the same options (``batch_size`` dropped), both bare.

The last line is machine-readable:
    RESULT overhead_ratio=<service/bare> max_loop_stall_ms=<x> rtf=<service s / media s> ...
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402
import structlog  # noqa: E402
from faster_whisper import BatchedInferencePipeline, WhisperModel  # noqa: E402
from numpy.typing import NDArray  # noqa: E402

from tests.acceptance.engine_harness import SENTENCES, normalise, srt_text, wer  # noqa: E402
from tests.media_factory import concat_audio, make_video, media_duration, speak  # noqa: E402
from transcriptarr.db.models import JobState, Source  # noqa: E402
from transcriptarr.queue.jobqueue import NewJob  # noqa: E402
from transcriptarr.service import Components, build  # noqa: E402
from transcriptarr.settings import Settings, load_settings  # noqa: E402
from transcriptarr.workers.bundled_models import tiny_en_path  # noqa: E402
from transcriptarr.workers.models import ModelKey, WhisperLoader  # noqa: E402
from transcriptarr.workers.presets import Preset, get_preset  # noqa: E402
from transcriptarr.workers.transcribe import SAMPLE_RATE, speech_regions  # noqa: E402

T = TypeVar("T")
STALL_INTERVAL = 0.010  # seconds between the monitor's wake-ups
STALL_REPORT_MS = 50.0  # stalls longer than this are listed


# --- media -------------------------------------------------------------------


@dataclass(frozen=True)
class Media:
    video: Path  # the .mkv that is benchmarked
    warmup: Path  # a few seconds of speech, to load the models
    duration: float  # seconds
    reference: str | None  # what was said (normalised), when we made the speech


def build_media(folder: Path, minutes: float, audio: Path | None) -> Media:
    """Speech of about ``minutes`` (distinct sentences: verbatim repeats look like a Whisper loop)."""
    folder.mkdir(parents=True, exist_ok=True)
    said: list[str] = []
    if audio is None:
        parts: list[Path] = []
        spoken = 0.0
        while spoken < minutes * 60:
            i = len(parts)
            text = SENTENCES[i % len(SENTENCES)] + f" Part {i // len(SENTENCES) + 1}."
            parts.append(speak(text, folder / f"s{i}.wav"))
            said.append(text)
            spoken += media_duration(parts[-1])
        audio = concat_audio(folder / "speech.wav", parts)
    warm_wav = speak("This short clip only loads the model before the timed runs.", folder / "warmup.wav")
    video = make_video(folder / "speech.mkv", [(audio, "eng", True)])
    warmup = make_video(folder / "warmup.mkv", [(warm_wav, "eng", True)])
    return Media(video, warmup, media_duration(video), normalise(" ".join(said)) if said else None)


def fresh_link(media: Path, folder: Path, name: str) -> Path:
    """The same file under a new path in ``folder``: a new queue key, same bytes (and page cache)."""
    link = folder / name
    os.link(media, link)
    return link


# --- bare faster-whisper -------------------------------------------------------


@dataclass(frozen=True)
class BareRun:
    seconds: float  # decode + transcribe + consume every segment
    decode_seconds: float
    cpu_seconds: float  # of this process (all threads)
    text: str
    stall: StallMonitor | None = None  # set when run beside the monitor (in a worker thread)
    loop_cpu_seconds: float = 0.0  # of the event-loop thread meanwhile (the monitor alone)


def load_bare_model(threads: int, model_dir: Path, *, plain: bool) -> WhisperModel:
    """tiny.en on the CPU in int8: ``WhisperModel(tiny_en_path(), ...)``.

    By default through the service's own ``WhisperLoader``: the same constructor arguments,
    and compute threads with the same OS priority as the service's (it lowers theirs, which
    matters only while other processes want the CPUs). ``plain`` calls the constructor
    directly, at this process's priority.
    """
    if plain:
        return WhisperModel(str(tiny_en_path()), device="cpu", compute_type="int8", cpu_threads=threads)
    loader = WhisperLoader(model_dir=model_dir, cpu_threads=threads, num_workers=1)
    model: WhisperModel = loader(ModelKey("bundled:tiny.en", "cpu", 0, "int8"))
    return model


def decode_pcm(media: Path) -> NDArray[np.float32]:
    """The first audio track as 16 kHz mono float32, through ffmpeg as the service extracts it.

    (The same samples as the service's work file; ``faster_whisper.decode_audio`` (PyAV)
    differs by a least significant bit here and there, which can change what Whisper decodes.)
    """
    args = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-i", f"file:{media}", "-map", "0:a:0"]
    args += ["-ac", "1", "-ar", str(SAMPLE_RATE), "-c:a", "pcm_s16le", "-f", "s16le", "-"]
    pcm = subprocess.run(args, capture_output=True, check=True).stdout
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / np.float32(32768.0)


def bare_transcribe(model: WhisperModel, media: Path, preset: Preset) -> BareRun:
    cpu0, t0 = time.process_time(), time.perf_counter()
    audio = decode_pcm(media)
    t1 = time.perf_counter()
    text = consume(model, audio, preset.transcribe_kwargs(), batched=preset.batched)
    t2 = time.perf_counter()
    return BareRun(t2 - t0, t1 - t0, time.process_time() - cpu0, text)


def consume(model: WhisperModel, audio: NDArray[np.float32], kwargs: Mapping[str, Any], *, batched: bool) -> str:
    """Transcribe and pull every segment (faster-whisper decodes lazily)."""
    pipeline: Any = BatchedInferencePipeline(model) if batched else model
    segments, _ = pipeline.transcribe(audio, language="en", **kwargs)
    return " ".join(segment.text.strip() for segment in segments)


# --- the service -----------------------------------------------------------------


class LogClock:
    """A structlog processor that timestamps every service log event and drops it."""

    def __init__(self) -> None:
        self.events: list[tuple[float, str, dict[str, Any]]] = []

    def __call__(self, _logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> Mapping[str, Any]:
        self.events.append((time.perf_counter(), str(event_dict.get("event")), dict(event_dict)))
        raise structlog.DropEvent

    def since(self, start: float) -> list[tuple[float, str, dict[str, Any]]]:
        return [e for e in self.events if e[0] >= start]


class SchedStat:
    """The calling thread's (ns run, ns runnable but waiting for a CPU), where Linux tells.

    Opened once and re-read with pread: cheap enough for the monitor's every tick.
    """

    def __init__(self) -> None:
        try:
            self._fd: int | None = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
        except OSError:
            self._fd = None

    def read(self) -> tuple[int, int] | None:
        if self._fd is None:
            return None
        ran, waited, _ = os.pread(self._fd, 128, 0).split()
        return int(ran), int(waited)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@dataclass(frozen=True)
class Stall:
    """One late wake-up of the monitor, and where the loop thread's time went meanwhile."""

    lag_ms: float
    ran_ms: float | None  # the loop thread ran code (blocking work on the loop)
    queued_ms: float | None  # it was runnable but every CPU was busy (the machine, not the service)
    # (Both over the monitor's whole interval, its intended 10 ms of sleep included.)

    def describe(self) -> str:
        if self.ran_ms is None or self.queued_ms is None:
            return f"{self.lag_ms:.0f} ms"
        # The rest of the late time it slept outside its own timer: on the GIL or on blocking I/O.
        other = max(0.0, self.lag_ms - self.ran_ms - self.queued_ms)
        return (
            f"{self.lag_ms:.0f} ms (loop thread ran {self.ran_ms:.0f} ms, waited {self.queued_ms:.0f} ms "
            f"for a CPU, about {other:.0f} ms blocked on the GIL or I/O)"
        )


class StallMonitor:
    """Wakes every 10 ms on the event loop; how late it wakes is how long the loop was blocked."""

    def __init__(self) -> None:
        self.lags_ms: list[float] = []
        self.worst: Stall = Stall(0.0, None, None)

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        sched = SchedStat()  # of the loop thread: this coroutine runs on it
        try:
            before = sched.read()
            while not stop.is_set():
                expected = loop.time() + STALL_INTERVAL
                await asyncio.sleep(STALL_INTERVAL)
                lag = max(0.0, (loop.time() - expected) * 1000.0)
                after = sched.read()
                self.lags_ms.append(lag)
                if lag > self.worst.lag_ms:
                    if before is None or after is None:
                        self.worst = Stall(lag, None, None)
                    else:
                        ran, queued = ((a - b) / 1e6 for a, b in zip(after, before, strict=True))
                        self.worst = Stall(lag, ran, queued)
                before = after
        finally:
            sched.close()

    @property
    def max_ms(self) -> float:
        return max(self.lags_ms, default=0.0)

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.lags_ms, q)) if self.lags_ms else 0.0


@dataclass
class ServiceRun:
    seconds: float  # enqueue -> job recorded completed
    cpu_seconds: float  # of this process (all threads)
    loop_cpu_seconds: float  # of the event-loop thread alone
    stall: StallMonitor
    stages: list[tuple[str, float]] = field(default_factory=list)  # (step, seconds)
    processing_seconds: float | None = None  # the job's own figure (claim -> complete)
    subtitle: Path | None = None


# Log events that mark the steps of one job, in order.
_MARKS = ("job_started", "job_stage", "subtitle_written", "job_finished")


async def monitored(work: Awaitable[T]) -> tuple[T, StallMonitor]:
    """Await ``work`` while the stall monitor ticks beside it on the event loop."""
    stop = asyncio.Event()
    stall = StallMonitor()
    monitor = asyncio.create_task(stall.run(stop))
    await asyncio.sleep(0)  # the monitor is running before the work starts
    try:
        return await work, stall
    finally:
        stop.set()
        await monitor


async def bare_beside_loop(model: WhisperModel, media: Path, preset: Preset) -> BareRun:
    """The bare run in a worker thread, with the same 10 ms monitor ticking as for the service.

    The monitor costs a little CPU; paying it on both sides keeps the ratio about the service.
    """
    loop_cpu0 = time.thread_time()
    run, stall = await monitored(asyncio.to_thread(bare_transcribe, model, media, preset))
    return replace(run, stall=stall, loop_cpu_seconds=time.thread_time() - loop_cpu0)


async def service_transcribe(parts: Components, media: Path, preset: Preset, clock: LogClock) -> ServiceRun:
    (t0, returned, cpu, loop_cpu, job_id), stall = await monitored(_enqueue_and_run(parts, media, preset))
    job = await parts.queue.get(job_id)
    if job.state != JobState.COMPLETED or not job.result_path:  # skipped jobs complete too, without a subtitle
        raise RuntimeError(f"service job {job.id} ended {job.state}: {job.error or job.details}")

    marks = [(t, _step_name(name, data)) for t, name, data in clock.since(t0) if name in _MARKS]
    finished = next((t for t, step in marks if step == "job_finished"), returned)
    stages, previous, previous_step = [], t0, "enqueue"
    for t, step in marks:
        stages.append((previous_step, t - previous))
        previous, previous_step = t, step
    return ServiceRun(finished - t0, cpu, loop_cpu, stall, stages, job.processing_seconds, Path(job.result_path))


async def _enqueue_and_run(parts: Components, media: Path, preset: Preset) -> tuple[float, float, float, float, int]:
    """(start, end, process CPU s, event-loop thread CPU s, job id) of one job through the queue."""
    cpu0, loop_cpu0, t0 = time.process_time(), time.thread_time(), time.perf_counter()
    queued = await parts.queue.enqueue(NewJob(source=Source.MANUAL, media_path=str(media), quality=preset.name))
    if not queued.created:
        raise RuntimeError(f"{media} was not queued: {queued.reason}")
    await parts.pool.run(asyncio.Event(), once=True)
    returned = time.perf_counter()
    return t0, returned, time.process_time() - cpu0, time.thread_time() - loop_cpu0, queued.job.id


def _step_name(event: str, data: Mapping[str, Any]) -> str:
    return str(data.get("stage")) if event == "job_stage" else event


def service_settings(folder: Path, threads: int) -> Settings:
    """As tests/acceptance/engine_harness.py builds them; the model stays loaded between jobs."""
    return load_settings(
        database_url=f"sqlite:///{folder / 'bench.db'}",
        whisper_model="bundled:tiny.en",
        whisper_device="cpu",
        whisper_compute_type="int8",
        whisper_threads=threads,
        workers=1,
        data_dir=folder / "data",
        model_dir=folder / "models",
        log_format="json",
        retry_backoff_seconds=0,
        model_idle_unload_seconds=0,
    )


# --- the benchmark ---------------------------------------------------------------


@dataclass
class Pairs:
    bare: list[BareRun] = field(default_factory=list)
    service: list[ServiceRun] = field(default_factory=list)


@contextmanager
def quiet_service_logs() -> Iterator[LogClock]:
    clock = LogClock()
    structlog.configure(processors=[clock], cache_logger_on_first_use=False)
    try:
        yield clock
    finally:
        structlog.reset_defaults()


async def measure_pairs(args: argparse.Namespace, media: Media, model: WhisperModel, preset: Preset) -> Pairs:
    pairs = Pairs()
    # A new database, work folder and library each time, also in a reused --workdir.
    folder = args.workdir / "service"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with quiet_service_logs() as clock:
        async with build(service_settings(folder, args.threads)) as parts:
            warmup = fresh_link(media.warmup, folder, "warmup.mkv")
            await bare_beside_loop(model, warmup, preset)
            await service_transcribe(parts, warmup, preset, clock)
            for i in range(args.repeats):
                video = fresh_link(media.video, folder, f"speech-run{i + 1}.mkv")
                order = ("bare", "service") if i % 2 == 0 else ("service", "bare")
                for which in order:
                    if which == "bare":
                        pairs.bare.append(await bare_beside_loop(model, video, preset))
                        run = pairs.bare[-1]
                        assert run.stall is not None
                        print(
                            f"  run {i + 1} bare     {run.seconds:7.2f} s (decode {run.decode_seconds:.2f} s, "
                            f"cpu {run.cpu_seconds:.1f} s, event-loop thread cpu {run.loop_cpu_seconds:.2f} s, "
                            f"max loop stall {run.stall.worst.describe()})"
                        )
                    else:
                        pairs.service.append(await service_transcribe(parts, video, preset, clock))
                        done = pairs.service[-1]
                        print(
                            f"  run {i + 1} service  {done.seconds:7.2f} s (cpu {done.cpu_seconds:.1f} s, "
                            f"event-loop thread cpu {done.loop_cpu_seconds:.2f} s, "
                            f"job's own processing_seconds {done.processing_seconds}, "
                            f"max loop stall {done.stall.worst.describe()})"
                        )
                        steps = ", ".join(f"{name} {seconds:.3f}" for name, seconds in done.stages)
                        print(f"      steps (s, each until the next mark): {steps}")
    return pairs


def timed(work: Callable[[], T]) -> tuple[float, T]:
    started = time.perf_counter()
    result = work()
    return time.perf_counter() - started, result


def batched_vs_sequential(model: WhisperModel, audio: NDArray[np.float32], repeats: int) -> tuple[float, float]:
    """Median seconds of the `fast` preset batched and sequential (same options, no batch_size)."""
    fast = get_preset("fast")
    batched_kwargs = fast.transcribe_kwargs()
    sequential_kwargs = {k: v for k, v in batched_kwargs.items() if k != "batch_size"}
    batched: list[float] = []
    sequential: list[float] = []
    for i in range(repeats):
        runs = [(batched, True), (sequential, False)]
        for times, is_batched in runs if i % 2 == 0 else runs[::-1]:
            kwargs = batched_kwargs if is_batched else sequential_kwargs
            started = time.perf_counter()
            consume(model, audio, kwargs, batched=is_batched)
            times.append(time.perf_counter() - started)
    print(f"  fast batched    runs: {', '.join(f'{s:.2f}' for s in batched)} s")
    print(f"  fast sequential runs: {', '.join(f'{s:.2f}' for s in sequential)} s")
    return statistics.median(batched), statistics.median(sequential)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=3.0, help="length of the generated speech")
    parser.add_argument("--audio", type=Path, help="use this audio file instead of generated speech")
    parser.add_argument("--preset", default="balanced", help="quality preset: fast, balanced or best")
    parser.add_argument("--repeats", type=int, default=2, help="bare/service pairs (medians are reported)")
    parser.add_argument("--threads", type=int, default=0, help="CTranslate2 CPU threads (0: its default)")
    parser.add_argument("--workdir", type=Path, help="keep the files here instead of a temporary folder")
    parser.add_argument("--no-batched", action="store_true", help="skip the fast-preset batched comparison")
    parser.add_argument(
        "--plain-bare",
        action="store_true",
        help="load the bare model with WhisperModel() at normal priority, not through the service's loader",
    )
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.minutes <= 0:
        parser.error("--repeats must be >= 1 and --minutes > 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    preset = get_preset(args.preset)
    with tempfile.TemporaryDirectory(prefix="pipeline-bench-") as tmp:
        args.workdir = (args.workdir or Path(tmp)).resolve()
        return run(args, preset)


def run(args: argparse.Namespace, preset: Preset) -> int:
    started = time.perf_counter()
    media = build_media(args.workdir / "media", args.minutes, args.audio)
    print(f"media: {media.video} ({media.duration:.1f} s, built in {time.perf_counter() - started:.1f} s)")
    print(
        f"model: bundled tiny.en, cpu int8, threads={args.threads or 'default'}; preset {preset.name}; "
        f"{os.cpu_count()} CPUs; {args.repeats} repeats"
    )

    load_seconds, model = timed(lambda: load_bare_model(args.threads, args.workdir / "models", plain=args.plain_bare))
    how = "WhisperModel() at normal priority" if args.plain_bare else "the service's WhisperLoader"
    print(f"bare model: loaded by {how} in {load_seconds:.2f} s (excluded, as is the service's)")

    load_before = os.getloadavg()[0]
    pairs = asyncio.run(measure_pairs(args, media, model, preset))
    bare = statistics.median(r.seconds for r in pairs.bare)
    service = statistics.median(r.seconds for r in pairs.service)
    ratio = service / bare
    rtf = service / media.duration
    # Less sensitive to other processes on the machine than the medians of wall time.
    min_ratio = min(r.seconds for r in pairs.service) / min(r.seconds for r in pairs.bare)
    cpu_ratio = statistics.median(r.cpu_seconds for r in pairs.service) / statistics.median(
        r.cpu_seconds for r in pairs.bare
    )
    stall = max(r.stall.max_ms for r in pairs.service)
    p99 = max(r.stall.percentile(99) for r in pairs.service)
    long_stalls = sorted((ms for r in pairs.service for ms in r.stall.lags_ms if ms > STALL_REPORT_MS), reverse=True)
    load = max(load_before, os.getloadavg()[0])

    # What the service does that the bare call does not: one more Silero VAD pass.
    audio = decode_pcm(media.video)
    vad_seconds, _ = timed(lambda: speech_regions(audio, preset.vad)) if preset.vad_filter else (0.0, None)

    print()
    print(f"bare     median {bare:7.2f} s  (decode {statistics.median(r.decode_seconds for r in pairs.bare):.2f} s)")
    print(f"service  median {service:7.2f} s  (enqueue -> job completed, subtitle written)")
    print(
        f"overhead {service - bare:+7.2f} s  ratio {ratio:.3f} (of the fastest runs {min_ratio:.3f}, "
        f"of CPU time {cpu_ratio:.3f}); RTF service {rtf:.3f}, bare {bare / media.duration:.3f}"
    )
    print(
        f"loop     max stall {stall:.1f} ms, p99 {p99:.1f} ms, {len(long_stalls)} over {STALL_REPORT_MS:g} ms"
        + (f": {', '.join(f'{ms:.0f}' for ms in long_stalls[:10])}" if long_stalls else "")
    )
    worst = max((r.stall.worst for r in pairs.service), key=lambda w: w.lag_ms)
    print(f"         worst: {worst.describe()}")
    bare_stall = max(r.stall.max_ms for r in pairs.bare if r.stall is not None)
    print(f"         for comparison, with only the bare run in a thread: max stall {bare_stall:.1f} ms")
    print(
        f"vad      one Silero VAD pass over the whole file: {vad_seconds:.2f} s = {100 * vad_seconds / bare:.1f}% "
        "of bare (the service runs the VAD twice, the bare call once)"
    )
    quality = text_quality(media, pairs)
    if quality:
        print(f"text     {quality}")
    if load > 0.5 * (os.cpu_count() or 1):
        print(f"note     load average up to {load:.1f} on {os.cpu_count()} CPUs: other work skews wall times")

    extra = ""
    if not args.no_batched:
        print()
        batched, sequential = batched_vs_sequential(model, audio, args.repeats)
        speedup = sequential / batched
        print(
            f"fast     batched {batched:.2f} s, sequential {sequential:.2f} s: batched speed-up x{speedup:.2f} "
            f"(RTF {batched / media.duration:.3f} vs {sequential / media.duration:.3f})"
        )
        extra = f" batched_speedup={speedup:.3f}"

    print(
        f"RESULT overhead_ratio={ratio:.3f} max_loop_stall_ms={stall:.1f} rtf={rtf:.4f} "
        f"min_ratio={min_ratio:.3f} cpu_ratio={cpu_ratio:.3f} bare_loop_stall_ms={bare_stall:.1f} "
        f"service_s={service:.2f} bare_s={bare:.2f} "
        f"media_s={media.duration:.1f} preset={preset.name} load={load:.1f}{extra}"
    )
    return 0


def text_quality(media: Media, pairs: Pairs) -> str:
    """WER of both against what was said (a service that drops text would look fast)."""
    subtitle = pairs.service[-1].subtitle
    if subtitle is None:
        return ""
    cues, service_text = srt_text(subtitle)
    bare_text = normalise(pairs.bare[-1].text)
    if media.reference is None:
        return f"{len(cues)} cues; service vs bare WER {wer(bare_text, service_text):.3f}"
    return (
        f"{len(cues)} cues; WER vs the script: service {wer(media.reference, service_text):.3f}, "
        f"bare {wer(media.reference, bare_text):.3f}"
    )


if __name__ == "__main__":
    sys.exit(main())
