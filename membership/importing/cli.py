"""``huifang import members|products|purchases FILE`` and ``huifang api-token``: thin shells over the service."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from membership.importing.reading import ENCODINGS
from membership.importing.runs import ImportRun, ImportStatus, duplicates, run_errors

SHOWN_ERRORS = 50


@click.group("import")
def import_cmd() -> None:
    """Import members, products and purchases from POS CSV exports (UTF-8 or GB18030)."""


def _make_import_command(kind: str) -> None:
    @import_cmd.command(kind, help=f"Import {kind} from a CSV file (formats: docs/import-formats.md).")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--store", "store_code", help="store code: default store, phone region and clock")
    @click.option("--encoding", type=click.Choice(ENCODINGS), default="auto", show_default=True)
    @click.option("--dry-run", is_flag=True, help="validate and count, change no data")
    @click.option(
        "--errors",
        "errors_path",
        type=click.Path(dir_okay=False, path_type=Path),
        help="error CSV path [default: FILE.errors.csv next to FILE]",
    )
    @with_appcontext
    def command(file: Path, store_code: str | None, encoding: str, dry_run: bool, errors_path: Path | None):
        from database.appsession import sessionmaker_for
        from membership.importing.service import UnknownStore, import_file

        session = sessionmaker_for()()
        try:
            try:
                run = import_file(
                    session, kind, file, store_code=store_code, encoding=encoding, dry_run=dry_run,
                    progress=_progress if sys.stderr.isatty() else None,
                )  # fmt: skip
            except UnknownStore as exc:
                raise click.ClickException(str(exc)) from None
            _report(session, run, errors_path or file.with_name(f"{file.stem}.errors.csv"))
        finally:
            session.close()
        if run.status == ImportStatus.FAILED:
            sys.exit(1)

    command.__doc__ = f"Import {kind} from a CSV file; re-importing the same file changes nothing."


for _kind in ("members", "products", "purchases"):
    _make_import_command(_kind)


def _progress(run: ImportRun) -> None:
    click.echo(f"\r  {run.rows_read:,} rows read, {run.failed:,} bad", nl=False, err=True)


def _report(session, run: ImportRun, errors_path: Path) -> None:
    if sys.stderr.isatty():
        click.echo(err=True)
    dry = " (dry run: nothing was changed)" if run.dry_run else ""
    click.echo(
        f"import run {run.id}: {run.status.value}{dry} — {run.rows_read:,} rows read, "
        f"{run.inserted:,} inserted, {run.updated:,} updated, {run.unchanged:,} unchanged, "
        f"{run.failed:,} rejected (encoding {run.encoding or '?'})"
    )
    if run.message:
        click.echo(f"error: {run.message}", err=True)
    if not run.failed:
        return
    shown = 0
    for error in run_errors(session, run.id, limit=SHOWN_ERRORS):
        click.echo(f"  line {error.line}: {error.column or '-'}: {error.reason}")
        shown += 1
    total = _write_error_csv(session, run.id, errors_path)
    if total > shown:
        click.echo(f"  … and {total - shown:,} more")
    click.echo(f"all {total:,} errors written to {errors_path}")


def _write_error_csv(session, run_id: int, path: Path) -> int:
    """Write every error of the run; utf-8-sig so Excel opens Chinese text correctly."""
    count = 0
    with open(path, "w", newline="", encoding="utf-8-sig") as out:
        writer = csv.writer(out)
        writer.writerow(["line", "column", "reason", "row"])
        for error in run_errors(session, run_id):
            writer.writerow([error.line, error.column or "", error.reason, error.raw or ""])
            count += 1
    return count


@import_cmd.command("duplicates")
@click.option("--limit", default=200, show_default=True, help="groups per field")
@with_appcontext
def duplicates_cmd(limit: int) -> None:
    """List members on different cards sharing a phone or e-mail (for a human to review; nothing is merged)."""
    from database.appsession import session_scope

    with session_scope() as session:
        groups = duplicates(session, limit=limit)
    for group in groups:
        cards = ", ".join(f"{card} ({name}, #{member_id})" for member_id, card, name in group.members)
        click.echo(f"{group.field} {group.value}: {cards}")
    click.echo(f"{len(groups)} group(s) of likely duplicates")


@click.group("api-token")
def api_token_cmd() -> None:
    """Bearer tokens that let a store's POS push members and purchases to /api/v1."""


@api_token_cmd.command("create")
@click.argument("store_code")
@with_appcontext
def api_token_create(store_code: str) -> None:
    """Create a token for STORE_CODE and print it once (only its hash is kept)."""
    from sqlalchemy import select

    from database.appsession import session_scope
    from membership.importing.tokens import create_token
    from membership.store import Store

    with session_scope() as session:
        store = session.scalar(select(Store).where(Store.code == store_code))
        if store is None:
            raise click.ClickException(f"no store with code {store_code!r}")
        token = create_token(session, store)
    click.echo(token)


@api_token_cmd.command("revoke")
@click.argument("store_code")
@with_appcontext
def api_token_revoke(store_code: str) -> None:
    """Revoke every live token of STORE_CODE."""
    from sqlalchemy import select

    from database.appsession import session_scope
    from membership.importing.tokens import revoke_tokens
    from membership.store import Store

    with session_scope() as session:
        store = session.scalar(select(Store).where(Store.code == store_code))
        if store is None:
            raise click.ClickException(f"no store with code {store_code!r}")
        count = revoke_tokens(session, store)
    click.echo(f"revoked {count} token(s) of {store_code}")
