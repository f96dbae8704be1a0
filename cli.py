"""The ``huifang`` command: database, worker, tick, replies, users, lifetimes and the demo."""

from __future__ import annotations

import uuid

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext

from app import create_app


@click.group(cls=FlaskGroup, create_app=create_app, add_default_commands=True, load_dotenv=False)
def main() -> None:
    """Huifang (回访): membership retention — replenishment offers, surveys and callbacks."""


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@with_appcontext
def db_upgrade() -> None:
    """Create or migrate the schema to the latest revision."""
    from database.appsession import engine
    from migrations import upgrade

    upgrade(engine())
    click.echo("database is at the latest revision")


@main.command()
@click.option("--queues", default="default,sms,email", show_default=True, help="comma-separated queue names")
@click.option("--burst", is_flag=True, help="exit when the queues are empty")
def worker(queues: str, burst: bool) -> None:
    """Run an RQ worker (with the scheduler and the periodic tick)."""
    import worker as worker_entry

    worker_entry.run(tuple(q.strip() for q in queues.split(",") if q.strip()), burst=burst, app=current_app)


@main.command()
@with_appcontext
def tick() -> None:
    """Run one scheduler tick now, in this process, and print what it inserted."""
    from campaigns.scheduler import tick as scheduler_tick
    from database.appsession import session_scope

    with session_scope() as session:
        result = scheduler_tick(session)
    click.echo(f"inserted {result.total} outbox rows {dict(result.inserted)}")


@main.command()
@click.option("--from", "sender", required=True, help="the sender's phone (E.164) or e-mail address")
@click.option("--body", required=True, help="the reply text")
@click.option("--channel", type=click.Choice(["sms", "email"]), default="sms", show_default=True)
@with_appcontext
def reply(sender: str, body: str, channel: str) -> None:
    """Simulate an inbound reply: store it, then process it exactly as the webhook's job would."""
    from campaigns.replies import store_inbound
    from database.appsession import session_scope
    from membership.importing import validation
    from service.intake import handle_reply

    # As a provider would deliver it: a reply from "" or "13926249126" would only land unmatched.
    check = (lambda value: validation.phone(value, None)) if channel == "sms" else validation.email
    try:
        sender = check(sender) or ""
        if not sender:
            raise validation.Invalid("required")
    except validation.Invalid as exc:
        example = "+8613926249126" if channel == "sms" else "member@example.com"
        raise click.BadParameter(
            f"{exc} (write it as a provider sends it, e.g. {example})", param_hint="--from"
        ) from None
    with session_scope() as session:
        inbound, _ = store_inbound(
            session,
            channel=channel,
            provider_id=f"cli-{uuid.uuid4().hex}",
            from_address=sender,
            body=body,
            raw={"source": "cli", "from": sender, "body": body},
        )
    with session_scope() as session:
        outcome, task_id = handle_reply(session, inbound.id, secret_key=current_app.config["SECRET_KEY"])
    click.echo(f"reply {inbound.id}: {outcome.status.value}, read as {outcome.intent}")
    if task_id:
        click.echo(f"call task {task_id} is in the callback queue")


@main.group()
def user() -> None:
    """Staff accounts."""


@user.command("create")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--role", type=click.Choice(["admin", "marketer", "agent"]), default="admin", show_default=True)
@click.password_option()
@with_appcontext
def user_create(email: str, name: str, role: str, password: str) -> None:
    """Create a staff user."""
    from accounts.staff import Role, create_staff
    from database.appsession import session_scope

    try:
        with session_scope() as session:
            create_staff(session, email, name, password, Role(role))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"created {role} {email}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
@click.option("--members", default=2500, show_default=True, help="how many demo members to create")
@click.option("--no-serve", is_flag=True, help="load the data and run one tick, then exit")
def demo(host: str, port: int, members: int, no_serve: bool) -> None:
    """Create the demo sporting-goods chain, start the worker and serve the UI."""
    import demo as demo_entry

    demo_entry.run(host=host, port=port, members=members, serve=not no_serve)


def _register_commands() -> None:
    from campaigns.codes_cli import codes
    from membership.importing.cli import api_token_cmd, import_cmd
    from membership.lifetime_cli import lifetimes

    for command in (import_cmd, api_token_cmd, lifetimes, codes):
        main.add_command(command)


_register_commands()
