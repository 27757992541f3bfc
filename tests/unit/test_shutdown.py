"""SIGTERM ends the process within SHUTDOWN_GRACE_SECONDS, whatever holds the stop up (transcriptarr/shutdown.py).

The timed tests run a real process whose event loop never finishes its stop (as when every write of the
stop waits on a database that hangs) and signal it as `docker stop` does. They need no `serial` mark: the
deadline is kept by a thread's timed wait and the exit is immediate, whatever else the machine runs.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import pytest

from transcriptarr.settings import Settings
from transcriptarr.shutdown import HAND_BACK_RESERVE_SECONDS, SHORTEST_STOP_SECONDS, StopBudget

EXIT_SLACK = 3.0  # a loaded machine's delay between the watchdog's deadline and the process being gone


@pytest.mark.parametrize(
    ("grace", "jobs", "exit_within"),
    [
        (40, 30, 40),  # the default: jobs keep the 30 s they had before the stop fitted in the grace
        (100, 90, 100),
        (20, 10, 20),
        (6, 3, 6),  # a short grace: half for the jobs, half for the hand-back
        (1, 0.5, SHORTEST_STOP_SECONDS),  # too short to hand back: the stop still gets its 5 s
        (0, 0, SHORTEST_STOP_SECONDS),  # "do not wait for the jobs": handed back at once
    ],
)
def test_the_grace_is_the_whole_stop_and_the_jobs_get_it_less_the_hand_back(
    grace: float, jobs: float, exit_within: float
) -> None:
    budget = StopBudget(grace)
    assert budget.jobs_seconds == pytest.approx(jobs)
    assert budget.exit_within_seconds == pytest.approx(exit_within)
    assert budget.jobs_seconds + budget.reserve_seconds <= budget.exit_within_seconds


def test_the_default_grace_leaves_running_jobs_the_half_minute_they_had() -> None:
    assert StopBudget(Settings.model_fields["shutdown_grace_seconds"].default).jobs_seconds == 30


# A service whose stop never ends: `stop` is set by the signal, and what follows waits forever.
_HUNG_STOP = textwrap.dedent(
    """
    import asyncio, sys, time
    from transcriptarr import shutdown

    shutdown.HAND_BACK_RESERVE_SECONDS = float(sys.argv[2])

    async def main():
        stop = asyncio.Event()
        signals = shutdown.StopOnSignals(stop, shutdown.StopBudget(float(sys.argv[1])))
        signals.install()
        signals.on_hurry(lambda: print("hurried", flush=True))
        print("ready", flush=True)
        await stop.wait()
        print("stopping", flush=True)
        if sys.argv[3] == "blocked":
            time.sleep(3600)  # the loop itself blocked, as when closing SQLite joins a thread held by a lock
        await asyncio.Event().wait()  # a write of the stop that the database never answers

    asyncio.run(main())
    """
)


def _hung_service(
    grace: float, reserve: float = HAND_BACK_RESERVE_SECONDS, *, hangs: str = "blocked"
) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", _HUNG_STOP, str(grace), str(reserve), hangs],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready", "the test process did not start"
    return process


def _exit_after(process: subprocess.Popen[str], started: float, bound: float) -> tuple[int, float, str]:
    try:
        output, _ = process.communicate(timeout=bound)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail(f"still running {bound:g} s after SIGTERM")
    return process.returncode, time.monotonic() - started, output


def test_sigterm_ends_a_stop_that_hangs_at_the_end_of_the_grace() -> None:
    grace = 6.0
    process = _hung_service(grace)
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    code, took, output = _exit_after(process, started, grace + EXIT_SLACK)
    assert code == 0, output
    assert took >= grace - 0.5, f"gone after {took:.1f} s: the jobs did not get their part of the grace"
    assert "stopping" in output and "shutdown_forced" in output, output
    assert "Traceback" not in output, output


def test_a_grace_of_zero_still_gives_the_hand_back_its_few_seconds() -> None:
    process = _hung_service(0)
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    code, took, output = _exit_after(process, started, SHORTEST_STOP_SECONDS + EXIT_SLACK)
    assert code == 0, output
    assert took >= SHORTEST_STOP_SECONDS - 0.5, output


def test_a_second_signal_shortens_the_stop_to_the_hand_back() -> None:
    reserve = 2.0
    process = _hung_service(600, reserve, hangs="awaiting")
    assert process.stdout is not None
    process.send_signal(signal.SIGTERM)
    while (line := process.stdout.readline()) and line.strip() != "stopping":
        pass
    hurried = time.monotonic()
    process.send_signal(signal.SIGINT)
    code, _, output = _exit_after(process, hurried, reserve + EXIT_SLACK)
    assert code == 0, output
    assert "shutdown_hurried" in output and "hurried" in output.split() and "shutdown_forced" in output, output
