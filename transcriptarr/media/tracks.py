"""Which audio track a client's ffmpeg command really sends, and the track a request for a language wants.

Bazarr's whisperai provider asks for a language's track of a multi-track video with
`ffmpeg -i VIDEO ... -f s16le - -map 0:m:language:ger`: the `-map` comes after the
output, where ffmpeg ignores it, so the upload is always the track ffmpeg picks by
itself (see `ffmpeg_default_audio`). When the request names the video and the
language is another track's, that track is the one to transcribe.
"""

from __future__ import annotations

from dataclasses import dataclass

from transcriptarr.media.probe import AudioStream, MediaInfo
from transcriptarr.policy.languages import whisper_code

__all__ = ["TrackSwitch", "ffmpeg_default_audio", "track_for_language"]

# fftools/ffmpeg_mux_init.c, map_auto_audio(): score = channels + 100000000 (the stream had packets
# while probing) + 5000000 (default disposition); the first stream with the highest score wins.
_HAD_PACKETS = 100_000_000
_DEFAULT_DISPOSITION = 5_000_000


def ffmpeg_default_audio(info: MediaInfo) -> AudioStream | None:
    """The audio stream ffmpeg maps when no `-map` applies: a default-flagged one before any other,
    then the most channels, then the lowest index. (Every stream is taken to have had packets.)"""
    best: AudioStream | None = None
    best_score = 0
    for stream in sorted(info.audio, key=lambda s: s.index):
        score = _HAD_PACKETS + (_DEFAULT_DISPOSITION if stream.default else 0) + (stream.channels or 0)
        if score > best_score:  # strictly greater: on a tie the earlier stream stays
            best, best_score = stream, score
    return best


@dataclass(frozen=True)
class TrackSwitch:
    """Transcribe `stream` of the file instead of the upload, which is `uploaded`; `reason` says why."""

    stream: AudioStream
    uploaded: AudioStream
    reason: str


def track_for_language(info: MediaInfo, language: str) -> TrackSwitch | None:
    """The track in `language` (a Whisper code) when ffmpeg's own pick is not in it; None: the upload is right
    (or no track is tagged with that language, and the upload is all there is to go by)."""
    uploaded = ffmpeg_default_audio(info)
    if uploaded is None or _code(uploaded) == language:
        return None
    matches = [stream for stream in sorted(info.audio, key=lambda s: s.index) if _code(stream) == language]
    if not matches:
        return None
    # The first of them, as Bazarr's provider means to: later tracks of one language are usually commentary.
    stream = matches[0]
    reason = (
        f"language={language} is audio track #{stream.index} ({stream.raw_language}), but ffmpeg without a "
        f"working -map uploads track #{uploaded.index} ({uploaded.raw_language or 'untagged'})"
    )
    return TrackSwitch(stream, uploaded, reason)


def _code(stream: AudioStream) -> str | None:
    return whisper_code(stream.language) if stream.language else None
