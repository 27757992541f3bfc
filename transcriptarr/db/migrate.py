"""Apply the Alembic migrations programmatically (start-up and `transcriptarr db upgrade`)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from transcriptarr.db.engine import SQLITE_BEGIN, backend_of

MIGRATIONS = Path(__file__).parent / "migrations"
# Any fixed number: several nodes starting together must not migrate twice.
_PG_LOCK_ID = 7_316_401
_MARIADB_LOCK = "transcriptarr_migrate"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def _current(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(_current)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> tuple[str | None, str | None]:
    """Upgrade the schema; returns (revision before, revision after).

    Nodes starting together migrate once: PostgreSQL takes an advisory lock in the migration's
    transaction; MariaDB takes a named lock before it, because its DDL commits as it goes and a
    transaction begun before the lock was free would read the version the other node replaced."""
    backend = backend_of(engine.url)

    def run(conn: Connection) -> tuple[str | None, str | None]:
        if backend.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _PG_LOCK_ID})
        before = _current(conn)
        config = alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
        return before, _current(conn)

    async with engine.connect() as conn:
        conn = await conn.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})
        if backend.name == "mariadb":
            await _mariadb_lock(conn)
        try:
            async with conn.begin():
                return await conn.run_sync(run)
        finally:
            if backend.name == "mariadb":
                await conn.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": _MARIADB_LOCK})
                await conn.commit()


async def _mariadb_lock(conn: AsyncConnection) -> None:
    """The session's named lock, taken outside the migration's transaction (which begins after it)."""
    got = (await conn.execute(text("SELECT GET_LOCK(:name, :wait)"), {"name": _MARIADB_LOCK, "wait": 120})).scalar()
    await conn.commit()  # the next transaction reads what the node that held the lock wrote
    if got != 1:
        raise RuntimeError(
            f"another node has been migrating this database for over 120 s (MariaDB lock {_MARIADB_LOCK!r} "
            "still held): look for a stuck transcriptarr process, then start again"
        )
