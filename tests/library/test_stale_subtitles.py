"""A subtitle we made from an earlier version of a media file does not cover the file as it is now (issue #16)."""

from __future__ import annotations

import os
from pathlib import Path

from tests.library.conftest import Kit, LibraryMaker, place
from transcriptarr.subtitles.registry import MediaIdentity, SubtitleRegistry
from transcriptarr.subtitles.writer import content_hash


async def test_a_changed_file_is_decided_again_despite_our_subtitle(
    make_library: LibraryMaker, kit: Kit, library_dir: Path
) -> None:
    film = place(kit.french, library_dir / "Film.mkv", age=600)
    ours = library_dir / "Film.fr.srt"
    ours.write_bytes(b"1\n")
    seen = film.stat()
    await SubtitleRegistry(make_library.db).record(
        ours,
        media_path=str(film),
        language="fr",
        job_id=1,
        sha256=content_hash(b"1\n"),
        media=MediaIdentity(seen.st_size, seen.st_mtime_ns),
    )
    library = make_library()
    first = await library.scan()
    assert not first.queued, first.decided
    assert not (await library.explain(film)).queue

    later = seen.st_mtime + 60  # replaced by another copy (mv -f keeps the newcomer's mtime)
    os.utime(film, (later, later))
    decision = await library.explain(film)
    assert decision.queue, decision.reasons
    assert any(
        "Film.fr.srt, written by Transcriptarr from an earlier version of this file" in r for r in decision.reasons
    )
    again = await library.scan()
    assert [action.path for action in again.queued] == [str(film)]
