"""Identity and rank of queued work: content keys and source priorities."""

from __future__ import annotations

import hashlib

from transcriptarr.db.models import Source

# Bazarr waits on an open HTTP request, a media server's user just pressed play or
# added an item, a person asked by hand, a file just appeared, a rescan found it.
SOURCE_PRIORITY: dict[Source, int] = {
    Source.BAZARR: 400,
    Source.WEBHOOK: 300,
    Source.MANUAL: 250,
    Source.WATCH: 200,
    Source.SCAN: 100,
}


def default_priority(source: Source) -> int:
    return SOURCE_PRIORITY[source]


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogateescape")).hexdigest()


def media_key(path: str, task: str, target_language: str | None) -> str:
    """Same library file + task + target language = same work."""
    return _digest("media", path, task, target_language or "")


def upload_key(audio_sha256: str, task: str, language: str | None, video_file: str | None = None) -> str:
    """Same uploaded audio + task + language (+ video_file) = same Bazarr request."""
    return _digest("upload", audio_sha256, task, language or "", video_file or "")
