"""The console script loads and offers every command group the README documents."""

from click.testing import CliRunner

from cli import main


def test_every_documented_command_is_registered():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0, result.output
    for command in ("db", "worker", "tick", "reply", "user", "demo", "import", "api-token", "lifetimes"):
        assert f"  {command} " in result.output, command
    result = CliRunner().invoke(main, ["import", "--help"])
    for kind in ("members", "products", "purchases", "duplicates"):
        assert f"  {kind} " in result.output, kind


def test_reply_refuses_a_sender_no_provider_would_send_and_stores_nothing(app, session, factory):
    from sqlalchemy import func, select

    from campaigns.inbound import InboundMessage
    from cli import reply

    member = factory.member(phone="+8613926249126")
    session.commit()
    runner = app.test_cli_runner()
    for sender, channel in (
        ("", "sms"),
        ("13926249126", "sms"),
        ("not-a-phone", "sms"),
        ("nobody@", "email"),
    ):
        result = runner.invoke(reply, ["--from", sender, "--body", "2", "--channel", channel])
        assert result.exit_code == 2 and "--from" in result.output, (sender, result.output)
    session.rollback()
    assert session.scalar(select(func.count()).select_from(InboundMessage)) == 0
    result = runner.invoke(reply, ["--from", " +86 139 2624 9126 ", "--body", "2 坏了"])
    assert result.exit_code == 0, result.output
    session.rollback()
    assert session.scalars(select(InboundMessage.from_address)).all() == [member.phone]
