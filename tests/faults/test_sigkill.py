"""SIGKILL at every phase of the real service's work, twenty times over: nothing lost, doubled or broken (issue #7).

tests/faults/chaos.py runs `python -m transcriptarr run` on a small library of real
speech (bundled tiny.en model) and kills it, process group and all, during the start-up
scan, right after a claim, during audio extraction, transcription, the subtitle write
and the storing of the result, and at random moments; restarts it each time; then lets
it finish and checks that every media file has exactly one completed job and one whole
subtitle, that no job is left queued or processing, and that no temporary, partial or
work file is left behind.

About 45-60 s per backend on a 2-core machine (a start of the service takes about 2 s).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.chaos import PHASES, run_chaos

pytestmark = pytest.mark.slow

KILLS = 20


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_sigkill_at_every_phase_loses_and_doubles_nothing(db_url: str, tmp_path: Path) -> None:
    report = run_chaos(tmp_path / "chaos", db_url, kills=KILLS, seed=7)

    assert report.ok, report.problems()
    assert report.kills == KILLS
    assert report.jobs == report.media_files >= 5
    # Each phase was aimed at about three times; a phase may be missed now and then (the moment came
    # and went before the kill landed), but never all of them.
    hit = {phase for phase in report.kills_by_phase if "missed" not in phase}
    assert hit == set(PHASES), report.describe()
