from __future__ import annotations

import asyncio
import itertools
import os
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from tests.media_factory import fixture_path, make_tone, make_video
from transcriptarr.media.audio import (
    SAMPLE_RATE,
    AudioExtractError,
    ExtractedAudio,
    choose_audio_track,
    decode_pcm_bytes,
    extract_audio,
    iter_chunks,
    load_all,
    pcm_file_duration,
)
from transcriptarr.media.probe import AudioStream, MediaInfo, NoAudioError
from transcriptarr.policy.languages import normalize_language

# --- choose_audio_track -------------------------------------------------------


def _stream(index: int, tag: str | None, *, default: bool = False) -> AudioStream:
    return AudioStream(
        index=index,
        codec="aac",
        channels=2,
        language=normalize_language(tag),
        raw_language=tag,
        default=default,
        title=None,
        start_time=0.0,
    )


def _info(*streams: AudioStream) -> MediaInfo:
    return MediaInfo(
        path="/media/film.mkv", duration=60.0, format_name="matroska", start_time=0.0, audio=streams, subtitles=()
    )


def test_preferred_language_wins_over_default() -> None:
    info = _info(_stream(1, "eng", default=True), _stream(2, "ger"))
    stream, reason = choose_audio_track(info, ["de"])
    assert stream.index == 2
    assert reason == "audio stream #2 (ger) matches preferred language 'de'"


def test_preferences_are_tried_in_order_and_normalised() -> None:
    info = _info(_stream(1, "eng"), _stream(2, "ger"), _stream(3, "fre"))
    stream, reason = choose_audio_track(info, ["Japanese", "French", "en"])
    assert stream.index == 3
    assert "preferred language 'French'" in reason


def test_default_track_wins_among_same_language() -> None:
    # e.g. a commentary track before the main one
    info = _info(_stream(1, "eng"), _stream(2, "eng", default=True))
    stream, _ = choose_audio_track(info, ["en"])
    assert stream.index == 2


def test_falls_back_to_default_track() -> None:
    info = _info(_stream(1, "ger"), _stream(2, "eng", default=True))
    stream, reason = choose_audio_track(info, ["ja"])
    assert stream.index == 2
    assert reason == "no track in preferred languages ['ja']; using default track #2 (eng)"


def test_falls_back_to_first_track_without_default() -> None:
    info = _info(_stream(1, None), _stream(2, "eng"))
    stream, reason = choose_audio_track(info, [])
    assert stream.index == 1
    assert reason == "no preferred languages given; no default track, using first track #1 (und)"


def test_unknown_preference_matches_nothing() -> None:
    info = _info(_stream(1, None), _stream(2, "und", default=True))
    stream, _ = choose_audio_track(info, ["und", "gibberish"])
    assert stream.index == 2


def test_no_audio_raises() -> None:
    with pytest.raises(NoAudioError):
        choose_audio_track(_info(), ["en"])


# --- extract_audio ----------------------------------------------------------------


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("audio")


@pytest.fixture(scope="module")
def tones_mkv(media_dir: Path) -> Path:
    """Stream 1: 440 Hz for 2 s. Stream 2: 1000 Hz for 3 s, starting at 2 s. FLAC keeps lengths exact."""
    low = make_tone(media_dir / "low.wav", 2.0, frequency=440)
    high = make_tone(media_dir / "high.wav", 3.0, frequency=1000)
    return make_video(
        media_dir / "tones.mkv",
        [(low, "eng", True), (high, "ger", False)],
        start_offsets={1: 2.0},
        audio_codec="flac",
    )


def _dominant_hz(samples: NDArray[np.float32]) -> float:
    spectrum = np.abs(np.fft.rfft(samples))
    return float(np.argmax(spectrum)) * SAMPLE_RATE / samples.size


@pytest.mark.asyncio
async def test_extract_second_track(tones_mkv: Path, tmp_path: Path) -> None:
    first = await extract_audio(tones_mkv, 1, tmp_path / "first.pcm")
    second = await extract_audio(tones_mkv, 2, tmp_path / "second.pcm", pad_start=False)

    assert first.sample_rate == SAMPLE_RATE
    assert first.duration == pytest.approx(2.0, abs=0.01)
    assert second.duration == pytest.approx(3.0, abs=0.01)
    assert second.path.stat().st_size == round(second.duration * 32_000)
    assert _dominant_hz(load_all(first)) == pytest.approx(440, abs=2)
    assert _dominant_hz(load_all(second)) == pytest.approx(1000, abs=2)
    assert not (tmp_path / "second.pcm.part").exists()


@pytest.mark.asyncio
async def test_late_stream_is_padded_to_media_time(tones_mkv: Path, tmp_path: Path) -> None:
    audio = await extract_audio(tones_mkv, 2, tmp_path / "padded.pcm")

    samples = load_all(audio)
    assert audio.duration == pytest.approx(5.0, abs=0.01)
    assert np.abs(samples[: int(1.95 * SAMPLE_RATE)]).max() < 1e-3
    assert _dominant_hz(samples[int(2.05 * SAMPLE_RATE) :]) == pytest.approx(1000, abs=2)


@pytest.mark.asyncio
async def test_missing_stream_reports_ffmpeg_stderr(tones_mkv: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out.pcm"
    with pytest.raises(AudioExtractError) as caught:
        await extract_audio(tones_mkv, 9, dest)

    message = str(caught.value)
    assert caught.value.permanent
    assert str(tones_mkv) in message and "stream #9" in message
    assert "matches no streams" in message  # ffmpeg's own words
    assert len(caught.value.stderr.splitlines()) <= 15
    assert not dest.exists() and not (tmp_path / "out.pcm.part").exists()


@pytest.mark.asyncio
async def test_non_media_input_fails_permanently(tmp_path: Path) -> None:
    fake = tmp_path / "fake.mkv"
    fake.write_text("not a film")
    with pytest.raises(AudioExtractError, match="Invalid data found") as caught:
        await extract_audio(fake, 1, tmp_path / "out.pcm")
    assert caught.value.permanent


@pytest.mark.asyncio
async def test_timeout_kills_ffmpeg_and_is_transient(tones_mkv: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out.pcm"
    with pytest.raises(AudioExtractError, match="did not finish") as caught:
        await extract_audio(tones_mkv, 1, dest, timeout=0)
    assert not caught.value.permanent
    assert not dest.exists() and not (tmp_path / "out.pcm.part").exists()


@pytest.mark.asyncio
async def test_cancellation_kills_ffmpeg_and_removes_partial_output(media_dir: Path, tmp_path: Path) -> None:
    source = make_tone(media_dir / "long.wav", 30.0)
    dest = tmp_path / "out.pcm"
    partial = tmp_path / "out.pcm.part"
    # Make the partial output a FIFO: reading from it proves ffmpeg is mid-write,
    # with no sleeps, and its end-of-file proves ffmpeg is gone.
    os.mkfifo(partial)
    task = asyncio.create_task(extract_audio(source, 0, dest))
    reader = await asyncio.to_thread(os.open, partial, os.O_RDONLY)
    try:
        first_bytes = await asyncio.to_thread(os.read, reader, 4096)
        assert first_bytes

        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        assert not partial.exists() and not dest.exists()
        while await asyncio.to_thread(os.read, reader, 65536):
            pass  # drains to EOF only once the ffmpeg process has exited
    finally:
        os.close(reader)


# --- PCM helpers and chunking ------------------------------------------------------


def _write_pcm(path: Path, samples: NDArray[np.int16]) -> ExtractedAudio:
    samples.astype("<i2").tofile(path)
    return ExtractedAudio.from_pcm_file(path)


def test_decode_pcm_bytes() -> None:
    raw = np.array([0, 16384, -32768, 32767], dtype="<i2").tobytes() + b"\x01"  # odd trailing byte
    decoded = decode_pcm_bytes(raw)
    assert decoded.dtype == np.float32
    assert decoded.tolist() == pytest.approx([0.0, 0.5, -1.0, 32767 / 32768])


def test_pcm_file_duration(tmp_path: Path) -> None:
    path = tmp_path / "a.pcm"
    path.write_bytes(b"\0" * 32_001)
    assert pcm_file_duration(path) == 1.0
    assert ExtractedAudio.from_pcm_file(path).duration == 1.0


def _check_exact_cover(chunks: list[tuple[int, int]], total: int, max_len: int) -> None:
    assert chunks[0][0] == 0
    assert chunks[-1][1] == total
    for (_, end), (start, _) in itertools.pairwise(chunks):
        assert start == end
    assert all(0 < end - start <= max_len for start, end in chunks)


def test_iter_chunks_covers_every_sample_once(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    samples = rng.integers(-20_000, 20_000, size=int(10.37 * SAMPLE_RATE), dtype=np.int16)
    audio = _write_pcm(tmp_path / "noise.pcm", samples)

    chunks = list(iter_chunks(audio, chunk_seconds=2.0, search_seconds=0.5))

    _check_exact_cover([(c.start_sample, c.start_sample + c.samples.size) for c in chunks], samples.size, 32_000)
    assert all(c.offset == c.start_sample / SAMPLE_RATE for c in chunks)
    assert all(c.samples.dtype == np.float32 for c in chunks)
    np.testing.assert_array_equal(np.concatenate([c.samples for c in chunks]), load_all(audio))


def test_iter_chunks_cuts_in_quiet_gaps(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    samples = rng.integers(-20_000, 20_000, size=12 * SAMPLE_RATE, dtype=np.int16)
    gap_centres = [2.5, 4.9, 7.3, 9.7]
    for centre in gap_centres:  # 0.4 s of silence, one inside each search window
        samples[int((centre - 0.2) * SAMPLE_RATE) : int((centre + 0.2) * SAMPLE_RATE)] = 0
    audio = _write_pcm(tmp_path / "gaps.pcm", samples)

    chunks = list(iter_chunks(audio, chunk_seconds=3.0, search_seconds=1.0))

    cuts = [c.start_sample for c in chunks[1:]]
    assert len(cuts) == len(gap_centres)
    for cut, centre in zip(cuts, gap_centres, strict=True):
        assert abs(cut / SAMPLE_RATE - centre) < 0.2
        assert not samples[cut - 400 : cut + 400].any()


def test_iter_chunks_short_and_empty_files(tmp_path: Path) -> None:
    short = _write_pcm(tmp_path / "short.pcm", np.ones(SAMPLE_RATE, dtype=np.int16))
    assert [c.samples.size for c in iter_chunks(short, chunk_seconds=1.0)] == [SAMPLE_RATE]
    empty = _write_pcm(tmp_path / "empty.pcm", np.zeros(0, dtype=np.int16))
    assert list(iter_chunks(empty)) == []
    with pytest.raises(ValueError, match="chunk_seconds"):
        list(iter_chunks(short, chunk_seconds=0))


@pytest.mark.asyncio
async def test_real_speech_is_cut_between_words(tmp_path: Path) -> None:
    audio = await extract_audio(fixture_path("jfk.flac"), 0, tmp_path / "jfk.pcm")
    assert audio.duration == pytest.approx(11.0, abs=0.1)
    whole = load_all(audio)
    window = int(0.3 * SAMPLE_RATE)
    speech_rms = float(np.sqrt(np.mean(whole**2)))

    # JFK pauses at about 4.3-5.3 s and 7.5-8.1 s: both fall in a search window.
    chunks = list(iter_chunks(audio, chunk_seconds=5.0, search_seconds=2.0))

    _check_exact_cover([(c.start_sample, c.start_sample + c.samples.size) for c in chunks], whole.size, 80_000)
    assert len(chunks) == 3
    for chunk in chunks[1:]:
        around_cut = whole[chunk.start_sample - window // 2 : chunk.start_sample + window // 2]
        assert float(np.sqrt(np.mean(around_cut**2))) < 0.15 * speech_rms
