"""The ffmpeg and ffprobe command lines the media code runs, as plain argument lists.

ffmpeg's are built and compiled by ffmpeg-python (`ffmpeg.input(...).output(...).compile()`); this is the
only module that imports that untyped library, so the rest of the package stays typed. Running the
commands stays with the callers, as asyncio subprocesses: cancellation kills the child, the stderr tail
goes into errors, and the child gets its nice value. ffmpeg-python has no builder for ffprobe
(`ffmpeg.probe` builds and runs one in a single blocking call, without a timeout), so the ffprobe lists
are written out here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ffmpeg

__all__ = [
    "PCM_CODEC",
    "PCM_FORMAT",
    "decode_head_pcm",
    "extract_pcm",
    "ffmpeg_path_arg",
    "ffprobe_packets",
    "ffprobe_streams",
]

PCM_FORMAT = "s16le"  # raw signed 16-bit little-endian: what Bazarr uploads and Whisper reads
PCM_CODEC = "pcm_s16le"
# Quiet and never reading the terminal. ffmpeg-python writes global options after the output;
# ffmpeg reads global options wherever they stand on the command line.
_QUIET = ("-nostdin", "-hide_banner", "-nostats", "-v", "error")


def ffmpeg_path_arg(path: Path | str) -> str:
    """A local path as an ffmpeg/ffprobe argument that cannot be misread.

    The absolute form never starts with "-" (no option confusion) and the
    "file:" protocol keeps names like "http:x.mkv" or "pipe:1" local files.
    """
    return "file:" + str(Path(path).absolute())


def extract_pcm(media: Path, stream_index: int, output: Path, *, sample_rate: int, pad_start: bool) -> list[str]:
    """ffmpeg writing stream `stream_index` (absolute ffprobe index) of `media` to `output` as mono PCM,
    overwriting it. `pad_start`: the PCM starts at media time 0 (see below)."""
    stream = ffmpeg.input(ffmpeg_path_arg(media))[str(stream_index)]
    if pad_start:
        # first_pts=0 pads a late-starting stream with silence so that PCM time equals media time;
        # async=1 fills/trims timestamp gaps. ("async" is a Python keyword, hence the dict.)
        stream = stream.filter("aresample", **{"async": 1, "first_pts": 0})
    return _compile(stream.output(ffmpeg_path_arg(output), **_pcm_options(sample_rate)), overwrite=True)


def decode_head_pcm(media: Path, seconds: float, *, sample_rate: int) -> list[str]:
    """ffmpeg writing the first `seconds` of the audio track ffmpeg picks itself to stdout, as mono PCM."""
    stream = ffmpeg.input(ffmpeg_path_arg(media))
    return _compile(stream.output("pipe:1", t=f"{seconds:g}", **_pcm_options(sample_rate)), overwrite=False)


def ffprobe_streams(path: Path | str) -> list[str]:
    """ffprobe printing the container and every stream of `path` as JSON."""
    return [
        "ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
        ffmpeg_path_arg(path),
    ]  # fmt: skip


def ffprobe_packets(path: Path | str, read_intervals: str) -> list[str]:
    """ffprobe printing the time and duration of the packets of `path` in `read_intervals`, as JSON."""
    return [
        "ffprobe", "-v", "error", "-print_format", "json",
        "-show_entries", "packet=pts_time,duration_time", "-read_intervals", read_intervals,
        ffmpeg_path_arg(path),
    ]  # fmt: skip


def _pcm_options(sample_rate: int) -> dict[str, Any]:
    # None: a flag without a value. No video, subtitle or data streams; one channel at sample_rate.
    return {
        "vn": None,
        "sn": None,
        "dn": None,
        "ac": 1,
        "ar": sample_rate,
        "c:a": PCM_CODEC,
        "format": PCM_FORMAT,
    }


def _compile(output: Any, *, overwrite: bool) -> list[str]:
    command = output.global_args(*_QUIET)
    if overwrite:
        command = command.overwrite_output()
    return [str(arg) for arg in command.compile()]
