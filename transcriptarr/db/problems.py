"""One line with the right cause when the database cannot be used: a SQLite file is not a server."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import URL

from transcriptarr.db.database import Database
from transcriptarr.writable import folder_problem


def sqlite_file(url: URL) -> Path | None:
    """The database file of a SQLite URL; None for other backends and in-memory databases."""
    if not url.get_backend_name().startswith("sqlite") or url.database in (None, "", ":memory:"):
        return None
    return Path(str(url.database)).expanduser().absolute()


def sqlite_problem(url: URL) -> str | None:
    """Why a SQLite database file cannot be opened for writing (its folder), or None."""
    path = sqlite_file(url)
    if path is None:
        return None
    problem = folder_problem(path.parent)
    if problem is not None:
        return f"cannot use the SQLite database {path}: {problem}; set DATABASE_URL to a file in a writable folder"
    return None


def unreachable_message(db: Database, error: str | None) -> str:
    """`db.health()` failed: why, in one line, with what to check."""
    lines = (error or "").strip().splitlines()
    first = lines[0] if lines else "no answer"
    path = sqlite_file(db.url)
    if path is not None:
        return sqlite_problem(db.url) or f"cannot open the SQLite database {path}: {first}; check DATABASE_URL"
    return (
        f"cannot reach the database {db.describe()}: {first}; "
        "check DATABASE_URL and that the database server is running and reachable"
    )
