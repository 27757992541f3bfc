"""The media index on SQLite, PostgreSQL and MariaDB: bulk load, look-ups, replace, prefix queries."""

from __future__ import annotations

from transcriptarr.db.database import Database
from transcriptarr.db.models import Task
from transcriptarr.library.index import IndexRow, Known, MediaIndex


def row(path: str, *, size: int = 10, context: str = "c" * 64, **fields: object) -> IndexRow:
    values: dict[str, object] = {
        "path": path,
        "size": size,
        "mtime_ns": 1_700_000_000_123_456_789,  # needs all 64 bits of precision
        "context": context,
        "queued": True,
        "reasons": ["video file (.mkv)", "queue: 1 job"],
        "jobs": [(None, Task.TRANSCRIBE), ("en", Task.TRANSLATE)],
        "probe": {"duration": 2.0, "audio": [], "subtitles": []},
        **fields,
    }
    return IndexRow(**values)  # type: ignore[arg-type]


async def test_save_load_and_replace(database: Database) -> None:
    index = MediaIndex(database)
    long_path = "/media/" + "very long folder name/" * 60 + "Film.mkv"  # past MariaDB's index limits
    paths = ["/media/a.mkv", "/media/Ünïcødé 映画 'q' \"d\".mkv", long_path]
    await index.save([row(path) for path in paths])
    assert await index.load() == {path: Known(10, 1_700_000_000_123_456_789, "c" * 64) for path in paths}

    stored = await index.get(long_path)
    assert stored is not None
    assert stored.jobs == [(None, Task.TRANSCRIBE), ("en", Task.TRANSLATE)]
    assert stored.reasons == ["video file (.mkv)", "queue: 1 job"] and stored.probe == row("x").probe

    await index.save([row("/media/a.mkv", size=20, queued=False, jobs=[])], remove=[long_path])
    assert set(await index.load()) == {"/media/a.mkv", paths[1]}
    replaced = await index.get("/media/a.mkv")
    assert replaced is not None and (replaced.size, replaced.queued, replaced.jobs) == (20, False, [])


async def test_get_many_in_chunks(database: Database) -> None:
    index = MediaIndex(database)
    paths = [f"/media/show/e{number:04d}.mkv" for number in range(1200)]
    await index.save([row(path) for path in paths])
    assert set(await index.get_many(paths[::2])) == set(paths[::2])
    assert len(await index.load()) == 1200


async def test_rows_under_a_folder_treat_like_wildcards_literally(database: Database) -> None:
    index = MediaIndex(database)
    await index.save(
        [row(path) for path in ("/m/100%_done/a.mkv", "/m/100%_done/b/c.mkv", "/m/100x_done/d.mkv", "/m/100%_done.mkv")]
    )
    assert sorted(r.path for r in await index.under("/m/100%_done")) == ["/m/100%_done/a.mkv", "/m/100%_done/b/c.mkv"]
    await index.remove(["/m/100%_done/a.mkv"])
    assert [r.path for r in await index.under("/m/100%_done/")] == ["/m/100%_done/b/c.mkv"]
