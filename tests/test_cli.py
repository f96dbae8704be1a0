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
