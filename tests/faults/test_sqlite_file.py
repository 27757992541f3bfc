"""The SQLite file deleted, replaced or hard-linked under a running node: one clear line, exit 1, no split history.

The process tests run the real service (`transcriptarr run`, no workers) and do to its
database file what a user or a script might: `rm`, `mv` another database over it,
`ln` it and start a second node through the link. The lock tests show the one-node
lock belongs to the file, not to its name (transcriptarr/db/sqlite_lock.py).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from tests.faults.sqlite_node import nodes_in
from transcriptarr.db.sqlite_lock import (
    SqliteInUse,
    file_in_use_message,
    in_use_message,
    linked_message,
    sqlite_node_lock,
)
from transcriptarr.db.sqlite_watch import SqliteFileWatch


def tables(database: Path) -> set[str]:
    with sqlite3.connect(database) as conn:
        return {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def other_database(path: Path) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")
    return path


# --------------------------------------------------------------------------- the lock and the check, in-process


def test_the_lock_belongs_to_the_file_not_to_its_name(tmp_path: Path) -> None:
    first = tmp_path / "queue.db"
    with sqlite_node_lock(str(first), "first"):
        moved = tmp_path / "moved.db"
        first.rename(moved)  # one name still, but another name than the holder's
        with pytest.raises(SqliteInUse) as refused, sqlite_node_lock(str(moved), "second"):
            pass
        assert str(refused.value) == file_in_use_message(moved.resolve())
        moved.rename(first)
        with pytest.raises(SqliteInUse) as refused, sqlite_node_lock(str(first), "second"):
            pass  # the same name: the lock file says who holds it
        assert str(refused.value) == in_use_message(first.resolve(), "first", os.getpid())
    with sqlite_node_lock(str(first), "second"):
        pass  # let go at the end of the block


def test_a_file_with_two_names_is_refused(tmp_path: Path) -> None:
    database = other_database(tmp_path / "queue.db")
    os.link(database, tmp_path / "link.db")
    for name in ("queue.db", "link.db"):
        with pytest.raises(SqliteInUse) as refused, sqlite_node_lock(str(tmp_path / name), "node"):
            pass
        assert str(refused.value) == linked_message((tmp_path / name).resolve(), 2)
        assert "remove the other names" in str(refused.value)


def test_the_check_tells_deleted_moved_replaced_and_linked_apart(tmp_path: Path) -> None:
    database = other_database(tmp_path / "queue.db")
    with sqlite_node_lock(str(database), "node") as locked:
        watch = SqliteFileWatch(locked.path, locked.fd)
        assert watch.check() is None
        os.link(database, tmp_path / "link.db")
        assert "got a second name (a hard link: 2 names)" in (watch.check() or "")
        (tmp_path / "link.db").unlink()
        assert watch.check() is None
        database.rename(tmp_path / "elsewhere.db")
        assert "was moved away" in (watch.check() or "")
        other_database(database)
        assert "was replaced by another file" in (watch.check() or "")
        database.unlink()
        (tmp_path / "elsewhere.db").unlink()
        problem = watch.check() or ""
        assert problem.startswith(f"the SQLite database {locked.path} was deleted while the service used it; ")
        assert "restore it from a backup" in problem


# --------------------------------------------------------------------------- a running node


async def test_the_file_deleted_under_a_running_node(tmp_path: Path) -> None:
    database = tmp_path / "queue.db"
    with nodes_in(tmp_path) as nodes:
        node = nodes.start("main", database)
        await node.started()
        database.unlink()
        assert await node.exited() == 1, node.tail()
    [line] = node.events("sqlite_file_changed")
    assert line["error"].startswith(f"the SQLite database {database.resolve()} was deleted while the service used it")
    assert [error["event"] for error in node.errors()] == ["sqlite_file_changed"], node.tail()
    assert not database.exists()  # nothing started a new, empty database at the path


async def test_another_database_moved_over_the_file(tmp_path: Path) -> None:
    database = tmp_path / "queue.db"
    with nodes_in(tmp_path) as nodes:
        node = nodes.start("main", database)
        await node.started()
        os.replace(other_database(tmp_path / "other.db"), database)
        assert await node.exited() == 1, node.tail()
    [line] = node.events("sqlite_file_changed")
    assert line["error"].startswith(f"the SQLite database {database.resolve()} was replaced by another file")
    assert [error["event"] for error in node.errors()] == ["sqlite_file_changed"], node.tail()
    # SQLite leaves the journal of a file that moved; the node emptied it into its own file first, or the
    # file put in its place would take the journal's pages as its own (the old database's tables, here).
    journal = Path(f"{database}-wal")
    assert not journal.exists() or journal.stat().st_size == 0
    assert tables(database) == {"notes"}  # the node wrote nothing into the file put in its place


async def test_a_second_node_through_a_hard_link(tmp_path: Path) -> None:
    database, link = tmp_path / "queue.db", tmp_path / "link.db"
    with nodes_in(tmp_path) as nodes:
        first = nodes.start("first", database)
        await first.started()
        os.link(database, link)
        second = nodes.start("second", link)
        assert await second.exited() == 1, second.tail()
        assert await first.exited() == 1, first.tail()
    [refusal] = second.events("startup_failed")
    assert refusal["error"] == linked_message(link.resolve(), 2)
    assert [error["event"] for error in second.errors()] == ["startup_failed"], second.tail()
    [line] = first.events("sqlite_file_changed")
    assert line["error"].startswith(f"the SQLite database {database.resolve()} got a second name (a hard link")
    assert [error["event"] for error in first.errors()] == ["sqlite_file_changed"], first.tail()
    assert not Path(f"{link}-wal").exists()  # no second journal: the second node never opened the file
