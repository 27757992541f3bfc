"""Video or audio, by file extension: one answer for the library rules, the worker's file names and Bazarr.

Light on purpose (standard library only): `naming.py`, which the rule engine, the CLI and
the settings import, reads it without loading faster-whisper.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

__all__ = [
    "COMMON_AUDIO_EXTENSIONS",
    "DEFAULT_AUDIO_EXTENSIONS",
    "DEFAULT_VIDEO_EXTENSIONS",
    "audio_file_extensions",
    "dotted",
]

# LIBRARY_VIDEO_EXTENSIONS when unset.
DEFAULT_VIDEO_EXTENSIONS: Final = frozenset(
    {
        ".mkv",
        ".mp4",
        ".m4v",
        ".avi",
        ".mov",
        ".wmv",
        ".mpg",
        ".mpeg",
        ".m2ts",
        ".mts",
        ".ts",
        ".webm",
        ".flv",
        ".ogv",
        ".vob",
        ".3gp",
        ".divx",
    }
)

# LIBRARY_AUDIO_EXTENSIONS when unset: none, or a music library would be transcribed song by song.
DEFAULT_AUDIO_EXTENSIONS: Final[frozenset[str]] = frozenset()

# Audio files even where LIBRARY_AUDIO_EXTENSIONS leaves audio out of the scans: a file queued by
# hand (`transcriptarr enqueue`, POST /api/jobs) still gets lyrics, not a subtitle named like a video's.
COMMON_AUDIO_EXTENSIONS: Final = frozenset(
    {".mp3", ".flac", ".m4a", ".m4b", ".aac", ".ogg", ".opus", ".wav", ".wma", ".alac"}
)


def dotted(extensions: Iterable[str]) -> frozenset[str]:
    """ "mp3", ".MP3" -> ".mp3": the settings keep extensions without their dot."""
    return frozenset("." + ext.strip().lower().lstrip(".") for ext in extensions if ext.strip())


def audio_file_extensions(video: Iterable[str], audio: Iterable[str]) -> frozenset[str]:
    """The extensions of audio files: LIBRARY_AUDIO_EXTENSIONS and the common ones, less LIBRARY_VIDEO_EXTENSIONS
    (the library looks at the video list first, so a name on both lists is a video there, and here)."""
    return (dotted(audio) | COMMON_AUDIO_EXTENSIONS) - dotted(video)
