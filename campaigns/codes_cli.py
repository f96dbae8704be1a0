"""``huifang codes import|status``: load a pool of single-use offer codes from a file and check it."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import click
from flask.cli import with_appcontext


@click.group()
def codes() -> None:
    """Offer code pools: unique codes handed out one per message."""


def read_codes(path: Path) -> Iterator[str]:
    """Codes from a text or CSV file: the first column of each row; a ``code`` header is skipped."""
    with path.open(encoding="utf-8-sig", newline="") as stream:
        sample = stream.read(4096)
        stream.seek(0)
        delimiter = "\t" if "\t" in sample else ","
        for number, row in enumerate(csv.reader(stream, delimiter=delimiter)):
            cell = row[0].strip() if row else ""
            if number == 0 and cell.casefold() in ("code", "codes", "coupon", "券码", "优惠码"):
                continue
            yield cell


@codes.command("import")
@click.argument("pool")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def import_command(pool: str, file: Path) -> None:
    """Add the codes in FILE (one per line, or the first CSV column) to POOL, creating it if new."""
    from campaigns.offer_codes import import_codes, pool_status
    from database.appsession import session_scope

    try:
        with session_scope() as session:
            added, skipped = import_codes(session, pool, read_codes(file))
            total, free = pool_status(session, pool) or (0, 0)
    except (ValueError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{file}: {exc}") from None
    click.echo(f"pool {pool}: added {added} codes, skipped {skipped} (blank or already in the pool)")
    click.echo(f"pool {pool}: {free} of {total} codes free")


@codes.command("status")
@click.argument("pool")
@with_appcontext
def status_command(pool: str) -> None:
    """How many codes POOL holds and how many are still free."""
    from campaigns.offer_codes import pool_status
    from database.appsession import session_scope

    with session_scope() as session:
        status = pool_status(session, pool)
    if status is None:
        raise click.ClickException(f"there is no code pool named {pool!r}")
    click.echo(f"pool {pool}: {status[1]} of {status[0]} codes free")
