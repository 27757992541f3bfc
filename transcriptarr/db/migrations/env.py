"""Alembic environment: migrations run on a connection handed over by `db.migrate`."""

from alembic import context

from transcriptarr.db.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("Run migrations with `transcriptarr db upgrade`; it supplies the connection.")

context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
