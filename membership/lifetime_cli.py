"""``huifang lifetimes fit|export|backtest|predict``: refit the stored estimates, export them as files,
or check the model on files."""

from __future__ import annotations

import datetime as dt

import click
from flask.cli import with_appcontext

from membership.lifetime_model import ModelConfig

DATE = click.DateTime(formats=["%Y-%m-%d"])
QUANTILE = click.FloatRange(0.01, 0.99)


@click.group()
def lifetimes() -> None:
    """Product lifetimes: how long each item lasts before members buy it again."""


@lifetimes.command("fit")
@click.option("--quantile", type=QUANTILE, help="reminder quantile (default: the back-tested one)")
@with_appcontext
def fit_command(quantile: float | None) -> None:
    """Refit every product's lifetime from the purchases in the database, now."""
    from database.appsession import session_scope
    from membership.lifetime_fit import fit_lifetimes

    with session_scope() as session:
        report = fit_lifetimes(session, quantile=quantile)
    click.echo(
        f"fitted {report.products} products from {report.lines:,} purchase lines in {report.seconds:.1f} s: "
        f"{report.learned} learned, {report.borrowed} from their category, {report.prior_only} prior only"
    )


@lifetimes.command("export")
@click.option(
    "--out", type=click.Path(dir_okay=False, writable=True), required=True, help="purchases CSV to write"
)
@click.option(
    "--priors-out", type=click.Path(dir_okay=False, writable=True), help="also write item,days priors"
)
@with_appcontext
def export_command(out: str, priors_out: str | None) -> None:
    """Write the database's purchases (and priors) in the format ``backtest`` and ``predict`` read."""
    from database.appsession import session_scope
    from membership.lifetime_export import export_priors, export_purchases

    with session_scope() as session:
        lines = export_purchases(session, out)
        click.echo(f"wrote {lines:,} purchase lines to {out}")
        if priors_out:
            click.echo(f"wrote {export_priors(session, priors_out):,} priors to {priors_out}")


@lifetimes.command("backtest")
@click.option(
    "--purchases", type=click.Path(exists=True, dir_okay=False), required=True, help="purchases CSV"
)
@click.option("--cutoff", type=DATE, required=True, help="fit on purchases before this date (YYYY-MM-DD)")
@click.option("--horizon", type=click.FloatRange(min=1), default=180, show_default=True, help="days scored")
@click.option("--priors", type=click.Path(exists=True, dir_okay=False), help="item,days CSV")
@click.option("--quantile", type=QUANTILE, help="reminder quantile to score for our method")
def backtest_command(
    purchases: str, cutoff: dt.datetime, horizon: float, priors: str | None, quantile: float | None
) -> None:
    """Score reminder timing per method (prior, naive mean, naive median, ours) on your own history."""
    from membership.lifetime_files import LifetimeFileError, backtest, format_backtest

    try:
        result = backtest(purchases, cutoff, horizon, priors, quantile)
    except LifetimeFileError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(format_backtest(result))


@lifetimes.command("predict")
@click.option(
    "--purchases", type=click.Path(exists=True, dir_okay=False), required=True, help="purchases CSV"
)
@click.option("--as-of", "as_of", type=DATE, required=True, help="use purchases up to the end of this date")
@click.option("--out", type=click.Path(dir_okay=False, writable=True), required=True, help="CSV to write")
@click.option("--priors", type=click.Path(exists=True, dir_okay=False), help="item,days CSV")
@click.option("--quantile", type=QUANTILE, help="reminder quantile")
def predict_command(
    purchases: str, as_of: dt.datetime, out: str, priors: str | None, quantile: float | None
) -> None:
    """Write line_id,member_id,item,purchased_at,reminder_at for every purchase line."""
    from membership.lifetime_files import LifetimeFileError, predict

    config = ModelConfig() if quantile is None else ModelConfig(reminder_quantile=quantile)
    try:
        written = predict(purchases, as_of.date(), out, priors, config)
    except LifetimeFileError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {written:,} lines to {out}")
