"""Alembic environment: always online, on the engine handed over by ``migrations.upgrade``."""

from alembic import context

from migrations import load_metadata

target_metadata = load_metadata()
engine = context.config.attributes.get("engine")
if engine is None:
    raise RuntimeError("run migrations through `huifang db upgrade`, which supplies the engine")

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
