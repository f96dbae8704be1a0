"""Settings refuse bad values loudly and give the embedded defaults when nothing is set."""

import pytest

from settings import SettingsError, load_settings


def test_defaults_are_embedded(tmp_path):
    settings = load_settings({"HUIFANG_INSTANCE_PATH": str(tmp_path)})
    assert settings.effective_database_url.startswith("sqlite:///")
    assert settings.redis_url == ""
    assert settings.sms_channel == "file"
    assert (tmp_path / "secret_key").exists() and settings.secret_key


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HUIFANG_DATABASE_URL", "mysql://x"),
        ("HUIFANG_REDIS_URL", "http://localhost"),
        ("HUIFANG_PUBLIC_URL", "ftp://x"),
        ("HUIFANG_TICK_SECONDS", "0"),
        ("HUIFANG_TICK_SECONDS", "soon"),
        ("HUIFANG_TWILIO_FROM", "12345"),
        ("HUIFANG_SMS_CHANNEL", "pigeon"),
        ("HUIFANG_SECRET_KEY", "   "),
    ],
)
def test_bad_values_are_refused_with_the_variable_named(tmp_path, name, value):
    with pytest.raises(SettingsError, match=name):
        load_settings({"HUIFANG_INSTANCE_PATH": str(tmp_path), name: value})


def test_twilio_channel_needs_credentials(tmp_path):
    with pytest.raises(SettingsError, match="TWILIO"):
        load_settings({"HUIFANG_INSTANCE_PATH": str(tmp_path), "HUIFANG_SMS_CHANNEL": "twilio"})
    ok = load_settings(
        {
            "HUIFANG_INSTANCE_PATH": str(tmp_path),
            "HUIFANG_SMS_CHANNEL": "twilio",
            "HUIFANG_TWILIO_ACCOUNT_SID": "AC123",
            "HUIFANG_TWILIO_AUTH_TOKEN": "tok",
            "HUIFANG_TWILIO_MESSAGING_SERVICE_SID": "MG123",
        }
    )
    assert ok.twilio_messaging_service_sid == "MG123"


def test_every_setting_is_documented_in_the_readme():
    from pathlib import Path

    import settings

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    assert [name for name in settings._PARSERS if f"HUIFANG_{name}" not in readme] == []
