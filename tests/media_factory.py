"""Builders for test media: speech, noise, silence and tiny videos with tagged tracks.

Everything is made on the fly with ffmpeg and espeak-ng into a folder the test
owns (tmp_path). Files are kept tiny (64x48 at 5 fps, ultrafast x264) so a
video takes a fraction of a second to build.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

__all__ = [
    "AudioTrackSpec",
    "SubtitleTrackSpec",
    "concat_audio",
    "fixture_path",
    "make_noise",
    "make_silence",
    "make_tone",
    "make_video",
    "media_duration",
    "run_tool",
    "speak",
    "stream_start_times",
    "write_srt",
]

# (audio file, language tag or None for no tag, default flag)
AudioTrackSpec = tuple[Path, str | None, bool]
# (srt file, language tag or None, forced flag)
SubtitleTrackSpec = tuple[Path, str | None, bool]

REPO_ROOT = Path(__file__).resolve().parents[1]
TEST_DATA = REPO_ROOT / "tests" / "data"
_FFMPEG = ("ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y")


def run_tool(args: Sequence[str]) -> None:
    """Run a command; on failure raise with its stderr so a broken fixture is obvious."""
    done = subprocess.run(list(args), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr.strip()}\ncommand: {args}")


def _file_arg(path: Path) -> str:
    # Test file names may start with "-" or contain ":"; keep them local files.
    return "file:" + str(path.absolute())


def speak(text: str, dest_wav: Path, voice: str = "en-us") -> Path:
    """Synthesise ``text`` with espeak-ng into a WAV (22.05 kHz mono)."""
    done = subprocess.run(
        ["espeak-ng", "-v", voice, "-w", str(dest_wav), "--stdin"],
        input=text,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or not dest_wav.exists():
        raise RuntimeError(f"espeak-ng failed: {done.stderr.strip()}")
    return dest_wav


def _lavfi_audio(dest: Path, source: str, seconds: float, sample_rate: int) -> Path:
    output = ["-t", f"{seconds}", "-ar", str(sample_rate), "-ac", "1", _file_arg(dest)]
    run_tool([*_FFMPEG, "-f", "lavfi", "-i", source, *output])
    return dest


def make_silence(dest: Path, seconds: float, *, sample_rate: int = 16_000) -> Path:
    """Digital silence (all-zero samples), format from the extension (.wav)."""
    return _lavfi_audio(dest, f"anullsrc=r={sample_rate}:cl=mono", seconds, sample_rate)


def make_noise(dest: Path, seconds: float, *, amplitude: float = 0.3, seed: int = 1, sample_rate: int = 16_000) -> Path:
    """Deterministic white noise (fixed seed)."""
    source = f"anoisesrc=r={sample_rate}:a={amplitude}:c=white:seed={seed}"
    return _lavfi_audio(dest, source, seconds, sample_rate)


def make_tone(dest: Path, seconds: float, *, frequency: float = 440.0, sample_rate: int = 16_000) -> Path:
    """A sine tone: easy to tell apart from speech or another tone."""
    return _lavfi_audio(dest, f"sine=frequency={frequency}:sample_rate={sample_rate}", seconds, sample_rate)


def concat_audio(dest: Path, parts: Sequence[Path], *, sample_rate: int = 16_000) -> Path:
    """Join audio files end to end (resampled to one mono rate), e.g. speech + silence + speech."""
    inputs = [arg for part in parts for arg in ("-i", _file_arg(part))]
    streams = "".join(f"[{i}:a]aresample={sample_rate},aformat=channel_layouts=mono[a{i}];" for i in range(len(parts)))
    joined = "".join(f"[a{i}]" for i in range(len(parts)))
    graph = f"{streams}{joined}concat=n={len(parts)}:v=0:a=1[out]"
    run_tool([*_FFMPEG, *inputs, "-filter_complex", graph, "-map", "[out]", _file_arg(dest)])
    return dest


def write_srt(dest: Path, cues: Sequence[tuple[float, float, str]]) -> Path:
    """A numbered SRT file from (start, end, text) cues in seconds."""

    def stamp(seconds: float) -> str:
        millis = round(seconds * 1000)
        hours, rest = divmod(millis, 3_600_000)
        minutes, rest = divmod(rest, 60_000)
        secs, millis = divmod(rest, 1000)
        return f"{hours:02d}:{minutes:02d}:{secs:02d},{millis:03d}"

    blocks = [f"{n}\n{stamp(start)} --> {stamp(end)}\n{text}\n" for n, (start, end, text) in enumerate(cues, 1)]
    dest.write_text("\n".join(blocks), encoding="utf-8")
    return dest


def _probe_json(path: Path) -> dict[str, object]:
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", _file_arg(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    data: dict[str, object] = json.loads(done.stdout)
    return data


def media_duration(path: Path) -> float:
    """Container duration in seconds, as ffprobe reports it."""
    fmt = _probe_json(path)["format"]
    assert isinstance(fmt, dict)
    return float(fmt["duration"])


def stream_start_times(path: Path) -> dict[int, float]:
    """start_time of every stream, by absolute stream index."""
    streams = _probe_json(path)["streams"]
    assert isinstance(streams, list)
    return {int(s["index"]): float(s.get("start_time", 0.0)) for s in streams}


def _video_length(audio_tracks: Sequence[AudioTrackSpec], offsets: Mapping[int, float]) -> float:
    ends = [offsets.get(i, 0.0) + media_duration(path) for i, (path, _, _) in enumerate(audio_tracks)]
    return max(ends, default=2.0)


def make_video(
    dest: Path,
    audio_tracks: Sequence[AudioTrackSpec],
    *,
    subtitle_tracks: Sequence[SubtitleTrackSpec] = (),
    start_offsets: Mapping[int, float] | None = None,
    duration: float | None = None,
    audio_titles: Sequence[str | None] = (),
    audio_codec: str = "aac",
) -> Path:
    """Mux a tiny test-pattern video with the given audio and text subtitle tracks.

    ``start_offsets`` maps an audio track's position in ``audio_tracks`` to a
    start delay in seconds (``-itsoffset``), giving that stream a non-zero
    start_time (exactly 2.0 in .mkv; in .mp4 with AAC about 0.05 s less,
    because of the encoder delay). ``duration`` defaults to the end of the
    longest audio track. The container follows ``dest``'s extension
    (.mkv or .mp4); Matroska keeps the default flags exactly as given.
    """
    offsets = dict(start_offsets or {})
    length = duration if duration is not None else _video_length(audio_tracks, offsets)
    is_mp4 = dest.suffix.lower() in {".mp4", ".m4v", ".mov"}
    args = [*_FFMPEG, "-f", "lavfi", "-i", f"testsrc=size=64x48:rate=5:duration={length}"]
    for i, (path, _, _) in enumerate(audio_tracks):
        if i in offsets:
            args += ["-itsoffset", f"{offsets[i]}"]
        args += ["-i", _file_arg(path)]
    for path, _, _ in subtitle_tracks:
        args += ["-i", _file_arg(path)]
    args += ["-map", "0:v"]
    args += [arg for i in range(len(audio_tracks)) for arg in ("-map", f"{i + 1}:a")]
    first_sub = len(audio_tracks) + 1
    args += [arg for i in range(len(subtitle_tracks)) for arg in ("-map", f"{first_sub + i}:s")]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", audio_codec]
    args += ["-c:s", "mov_text" if is_mp4 else "srt"]
    args += _track_metadata(audio_tracks, subtitle_tracks, audio_titles)
    if not is_mp4:
        args += ["-default_mode", "passthrough"]
    args += ["-t", f"{length}", _file_arg(dest)]
    run_tool(args)
    return dest


def _track_metadata(
    audio_tracks: Sequence[AudioTrackSpec],
    subtitle_tracks: Sequence[SubtitleTrackSpec],
    audio_titles: Sequence[str | None],
) -> list[str]:
    args: list[str] = []
    for i, (_, language, default) in enumerate(audio_tracks):
        args += [f"-disposition:a:{i}", "default" if default else "0"]
        if language is not None:
            args += [f"-metadata:s:a:{i}", f"language={language}"]
        if i < len(audio_titles) and audio_titles[i] is not None:
            args += [f"-metadata:s:a:{i}", f"title={audio_titles[i]}"]
    for i, (_, language, forced) in enumerate(subtitle_tracks):
        args += [f"-disposition:s:{i}", "forced" if forced else "0"]
        if language is not None:
            args += [f"-metadata:s:s:{i}", f"language={language}"]
    return args


def fixture_path(name: str) -> Path:
    """A real recording the tests ship in tests/data (see tests/data/README.md).

    $TRANSCRIPTARR_FIXTURES, when set, is searched first (by name, then under audio/, the
    layout of older fixture folders). A missing file fails the test: the repository holds them.
    """
    candidates = []
    override = os.environ.get("TRANSCRIPTARR_FIXTURES")
    if override:
        candidates += [Path(override) / name, Path(override) / "audio" / name]
    candidates.append(TEST_DATA / name)
    for path in candidates:
        if path.is_file():
            return path
    pytest.fail(f"test fixture not found: {TEST_DATA / name} (it ships in the repository: is the clone complete?)")
