"""The ffmpeg command lines ffmpeg-python compiles, and the ffprobe ones written out, are exactly what the
media code needs: the `file:` guard on every path, the stream picked by absolute index, the resampling
filter, the PCM format, and global options that still work where ffmpeg-python puts them (at the end).
Real ffmpeg runs on ffmpeg-made media show the compiled lines do what they say.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.media_factory import make_tone
from transcriptarr.media.audio import SAMPLE_RATE, extract_audio, load_all
from transcriptarr.media.commands import (
    decode_head_pcm,
    extract_pcm,
    ffmpeg_path_arg,
    ffprobe_packets,
    ffprobe_streams,
)
from transcriptarr.media.probe import probe_media

QUIET = ["-nostdin", "-hide_banner", "-nostats", "-v", "error"]
PCM = ["-f", "s16le", "-ac", "1", "-ar", "16000", "-c:a", "pcm_s16le", "-dn", "-sn", "-vn"]
# Characters that mean something on ffmpeg's command line or in a filter graph.
ODD_NAME = "-odd:name [0];'x"


def test_extract_with_padding_maps_the_stream_through_aresample(tmp_path: Path) -> None:
    media, output = tmp_path / "film.mkv", tmp_path / "film.pcm.part"

    command = extract_pcm(media, 2, output, sample_rate=SAMPLE_RATE, pad_start=True)

    assert command == [
        "ffmpeg", "-i", f"file:{media}",
        "-filter_complex", "[0:2]aresample=async=1:first_pts=0[s0]", "-map", "[s0]",
        *PCM, f"file:{output}", *QUIET, "-y",
    ]  # fmt: skip


def test_extract_without_padding_maps_the_stream_by_absolute_index(tmp_path: Path) -> None:
    media, output = tmp_path / "film.mkv", tmp_path / "film.pcm.part"

    command = extract_pcm(media, 1, output, sample_rate=8000, pad_start=False)

    assert command == [
        "ffmpeg", "-i", f"file:{media}", "-map", "0:1",
        "-f", "s16le", "-ac", "1", "-ar", "8000", "-c:a", "pcm_s16le", "-dn", "-sn", "-vn",
        f"file:{output}", *QUIET, "-y",
    ]  # fmt: skip


def test_decode_head_lets_ffmpeg_pick_the_track_and_writes_to_stdout(tmp_path: Path) -> None:
    media = tmp_path / "upload.bin"

    assert decode_head_pcm(media, 90.5, sample_rate=SAMPLE_RATE) == [
        "ffmpeg", "-i", f"file:{media}",
        "-f", "s16le", "-ac", "1", "-ar", "16000", "-c:a", "pcm_s16le", "-dn", "-sn", "-t", "90.5", "-vn",
        "pipe:1", *QUIET,
    ]  # fmt: skip
    assert "-map" not in decode_head_pcm(media, 30, sample_rate=SAMPLE_RATE)


def test_ffprobe_commands(tmp_path: Path) -> None:
    media = tmp_path / "film.mkv"

    assert ffprobe_streams(media) == [
        "ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", f"file:{media}",
    ]  # fmt: skip
    assert ffprobe_packets(media, "99999999%") == [
        "ffprobe", "-v", "error", "-print_format", "json", "-show_entries", "packet=pts_time,duration_time",
        "-read_intervals", "99999999%", f"file:{media}",
    ]  # fmt: skip


def test_every_path_is_absolute_and_behind_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A relative name that starts with "-" would be an option, "http:x" a protocol; neither reaches
    # ffmpeg as it is, and nothing escapes the name (it is never part of the filter graph).
    monkeypatch.chdir(tmp_path)
    media, output = Path(f"{ODD_NAME}.mkv"), Path("http:out.pcm")
    guarded_media, guarded_output = f"file:{tmp_path}/{ODD_NAME}.mkv", f"file:{tmp_path}/http:out.pcm"

    assert ffmpeg_path_arg(media) == guarded_media
    for pad_start in (True, False):
        command = extract_pcm(media, 0, output, sample_rate=SAMPLE_RATE, pad_start=pad_start)
        assert command[command.index("-i") + 1] == guarded_media
        assert command.count(guarded_output) == 1 and command[-len(QUIET) - 2] == guarded_output
        assert not [arg for arg in command if ODD_NAME in arg and not arg.startswith("file:")]
    assert decode_head_pcm(media, 1, sample_rate=SAMPLE_RATE)[2] == guarded_media
    assert ffprobe_streams(media)[-1] == guarded_media
    assert ffprobe_packets(media, "0%")[-1] == guarded_media


def test_trailing_global_options_keep_ffmpeg_quiet_and_off_stdin(tmp_path: Path) -> None:
    # Without -nostdin a "q" on ffmpeg's stdin stops it at once with no output; without -hide_banner
    # and -v error it writes to stderr. ffmpeg-python puts them after the output: ffmpeg still obeys.
    tone = make_tone(tmp_path / "tone.wav", 30.0)

    done = subprocess.run(
        decode_head_pcm(tone, 20, sample_rate=SAMPLE_RATE), input=b"q\n", capture_output=True, timeout=60, check=False
    )

    assert done.returncode == 0 and done.stderr == b""
    assert len(done.stdout) == 20 * SAMPLE_RATE * 2  # -t, -ac 1, -ar 16000 and -f s16le all applied


@pytest.mark.asyncio
async def test_odd_names_are_extracted_and_probed_for_real(tmp_path: Path) -> None:
    tone = make_tone(tmp_path / f"{ODD_NAME}.wav", 2.0, sample_rate=44_100)
    dest = tmp_path / f"{ODD_NAME}.pcm"

    info = await probe_media(tone)
    audio = await extract_audio(tone, info.audio[0].index, dest)

    assert audio.path == dest and audio.duration == pytest.approx(2.0, abs=0.01)
    samples = load_all(audio)  # the 440 Hz tone, resampled to 16 kHz
    assert np.argmax(np.abs(np.fft.rfft(samples))) * SAMPLE_RATE / samples.size == pytest.approx(440, abs=2)
    assert not dest.with_name(dest.name + ".part").exists()
