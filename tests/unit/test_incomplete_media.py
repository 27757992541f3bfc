"""A file still being copied is told from a whole one by what can be read of it (ffmpeg-made media)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.media_factory import run_tool
from transcriptarr.media.probe import INCOMPLETE_PATIENCE_SECONDS, incomplete_media, probe_media


def movie(dest: Path, seconds: int, *extra: str) -> Path:
    run_tool(
        [
            *("ffmpeg", "-nostdin", "-v", "error", "-y"),
            *("-f", "lavfi", "-i", f"testsrc=size=64x48:rate=5:duration={seconds}"),
            *("-f", "lavfi", "-i", f"sine=duration={seconds}"),
            *("-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", *extra),
            str(dest),
        ]
    )
    return dest


async def test_a_whole_file_is_whole_also_when_its_timestamps_start_at_100_hours(tmp_path: Path) -> None:
    late = movie(tmp_path / "late.mkv", 3, "-output_ts_offset", "360000")
    info = await probe_media(late, measure_length=True)
    assert info.duration > 360000  # the header's "duration" is its last timestamp
    assert incomplete_media(info, late) is None


async def test_half_a_copied_file_waits_until_it_is_whole_or_left_alone_for_long(tmp_path: Path) -> None:
    whole = movie(tmp_path / "whole.mkv", 60)
    half = tmp_path / "half.mkv"
    half.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    info = await probe_media(half, measure_length=True)
    reason = incomplete_media(info, half)
    assert reason is not None and "still being written" in reason and "1:00 long" in reason, reason

    long_ago = time.time() - INCOMPLETE_PATIENCE_SECONDS - 60
    os.utime(half, (long_ago, long_ago))  # a truncated download stays truncated: take it as it is
    assert incomplete_media(info, half) is None
    assert incomplete_media(await probe_media(whole, measure_length=True), whole) is None
