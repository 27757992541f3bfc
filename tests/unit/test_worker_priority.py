"""WORKER_NICE reaches the threads that transcribe and the ffmpeg that extracts; a value the process
may not take is one warning at start-up, not a crash.

Nice values are read back from the kernel (/proc/self/task/<tid>/stat, os.getpriority), never from our
own bookkeeping.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.acceptance.engine_harness import engine_settings
from tests.conftest import unavailable
from tests.polling import eventually
from transcriptarr.cpu_priority import nice_problem, niced_threads, thread_nice
from transcriptarr.db.models import JobState, Source
from transcriptarr.media.audio import extract_audio
from transcriptarr.queue.jobqueue import NewJob
from transcriptarr.service import build
from transcriptarr.settings import ConfigError, load_settings

# Seconds on the clock: run alone (`make test` runs `serial` tests after the rest).
pytestmark = pytest.mark.serial

REPO = Path(__file__).resolve().parents[2]


def _stat_fields(stat_path: Path) -> list[str]:
    """Fields of a /proc stat file after the command name (field 3 of proc(5) is index 0)."""
    return stat_path.read_text().rsplit(")", 1)[1].split()


def kernel_nice(stat_path: Path) -> int:
    return int(_stat_fields(stat_path)[16])  # proc(5) field 19: nice


def cpu_ticks(stat_path: Path) -> int:
    fields = _stat_fields(stat_path)
    return int(fields[11]) + int(fields[12])  # utime + stime


def threads_now() -> dict[int, tuple[int, int]]:
    """tid -> (CPU ticks, nice) of every thread of this process."""
    found = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            found[int(task.name)] = (cpu_ticks(task / "stat"), kernel_nice(task / "stat"))
        except OSError:  # ended meanwhile
            continue
    return found


def test_inference_threads_run_at_the_nice_value_and_the_caller_keeps_its_own() -> None:
    own = thread_nice()
    wanted = min(own + 7, 19)
    pool = niced_threads(wanted, "test-inference")
    try:
        tid = pool.submit(threading.get_native_id).result()
        assert kernel_nice(Path(f"/proc/self/task/{tid}/stat")) == wanted
        assert os.getpriority(os.PRIO_PROCESS, tid) == wanted
    finally:
        pool.shutdown()
    assert thread_nice() == own  # the event loop's thread (here: the test's) is left alone


async def test_ffmpeg_starts_at_the_nice_value(tmp_path: Path) -> None:
    """ffmpeg reading a FIFO nobody writes to waits in open(): long enough to read its nice value."""
    fifo = tmp_path / "input.wav"
    os.mkfifo(fifo)
    own = thread_nice()
    wanted = min(own + 5, 19)
    dest = tmp_path / "job-1.pcm"
    extraction = asyncio.create_task(extract_audio(fifo, 0, dest, nice=wanted))
    children: list[Path] = []

    def ffmpeg_started() -> bool:
        children[:] = [
            proc
            for proc in Path("/proc").iterdir()
            if proc.name.isdigit() and _is_our_ffmpeg(proc) and (proc / "task").is_dir()
        ]
        return bool(children)

    try:
        await eventually(ffmpeg_started, "ffmpeg to start", timeout=30)
        [ffmpeg] = children
        for thread in (ffmpeg / "task").iterdir():
            assert kernel_nice(thread / "stat") == wanted
    finally:
        extraction.cancel()
        with pytest.raises(asyncio.CancelledError):
            await extraction
    assert not dest.exists() and not dest.with_name(dest.name + ".part").exists()
    assert thread_nice() == own


def _is_our_ffmpeg(proc: Path) -> bool:
    try:
        text = (proc / "stat").read_text()
    except OSError:
        return False
    name = text[text.index("(") + 1 : text.rindex(")")]
    return name == "ffmpeg" and int(_stat_fields(proc / "stat")[1]) == os.getpid()  # field 4: parent pid


@pytest.mark.parametrize(("value", "message"), [("25", "less than or equal to 19"), ("-21", "greater than or equal")])
def test_a_nice_value_out_of_range_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WORKER_NICE", value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value).startswith(f"WORKER_NICE: Input should be {message}")
    assert "\n" not in str(caught.value)


def test_a_value_the_process_may_take_has_no_problem() -> None:
    assert nice_problem(min(thread_nice() + 1, 19)) is None
    assert nice_problem(None) is None


def _without_cap_sys_nice() -> list[str]:
    """A command prefix that runs without the right to lower nice values (root keeps everything else)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        unavailable("setpriv (util-linux) is needed to drop CAP_SYS_NICE when the tests run as root")
    return ["setpriv", "--inh-caps=-sys_nice", "--bounding-set=-sys_nice"]


def test_lowering_below_the_process_value_without_the_right_is_explained() -> None:
    code = "from transcriptarr.cpu_priority import nice_problem; print(nice_problem(-5))"
    result = subprocess.run(
        [*_without_cap_sys_nice(), sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    problem = result.stdout.strip()
    own = thread_nice()  # the child started with it
    assert problem.startswith(f"WORKER_NICE=-5 is below this process's nice value {own}, and lowering it needs root")
    assert "CAP_SYS_NICE" in problem and "--cap-add SYS_NICE" in problem


def test_the_service_warns_once_and_runs_when_it_may_not_lower_its_nice(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'nice.db'}",
        "DATA_DIR": str(tmp_path / "data"),
        "MODEL_DIR": str(tmp_path / "models"),
        "WHISPER_MODEL": "bundled:tiny.en",
        "WHISPER_DEVICE": "cpu",
        "LOG_FORMAT": "json",
        "NODE_NAME": "nice-test",
        "WORKER_NICE": "-5",
    }
    result = subprocess.run(
        [*_without_cap_sys_nice(), sys.executable, "-m", "transcriptarr", "run", "--once"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    warnings = [line for line in lines if line.get("event") == "worker_nice_not_permitted"]
    assert len(warnings) == 1, result.stderr[-3000:]
    assert warnings[0]["level"] == "warning" and warnings[0]["worker_nice"] == -5
    assert f"Set WORKER_NICE to {thread_nice()} or more" in warnings[0]["error"]
    assert any(line.get("event") == "service_stopped" for line in lines)


@pytest.mark.slow
async def test_the_threads_that_transcribe_run_at_worker_nice(tmp_path: Path) -> None:
    """A real job: the CPU it costs is spent (nearly all) by threads at WORKER_NICE, the event loop keeps its own."""
    library = tmp_path / "library"
    library.mkdir()
    media = Path(shutil.copy(REPO / "tests" / "data" / "jfk.flac", library / "jfk.flac"))
    own = thread_nice()
    wanted = min(own + 7, 19)
    settings = engine_settings(tmp_path, worker_nice=wanted, quality="fast")
    async with build(settings) as parts:
        job = (await parts.queue.enqueue(NewJob(source=Source.MANUAL, media_path=str(media)))).job
        before = threads_now()
        await parts.pool.run(asyncio.Event(), once=True)
        after = threads_now()
        assert (await parts.queue.get(job.id)).state == JobState.COMPLETED
    spent = {tid: ticks - before.get(tid, (0, 0))[0] for tid, (ticks, _) in after.items()}
    niced = sum(ticks for tid, ticks in spent.items() if after[tid][1] == wanted)
    total = sum(spent.values())
    assert total > 0
    assert niced / total >= 0.9, {tid: (ticks, after[tid][1]) for tid, ticks in spent.items() if ticks}
    assert thread_nice() == own  # the event loop (HTTP, queue) keeps the process's priority
