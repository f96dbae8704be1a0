"""The Flask application factory: defaults in code, then HUIFANG_* environment, then ``config``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

import database.appsession
import jobs.connection
from settings import load_settings


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app; connects to nothing until the first request or job needs it."""
    import web

    app = _base_app(config)
    web.init_app(app)
    return app


def create_machine_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The same app with only the endpoints machines call: provider webhooks and the POS API.

    What the README's production set-up serves on the webhook server (a gevent gunicorn), so a
    burst of webhooks pays for no page machinery and a slow page never holds up a webhook.
    """
    import web

    app = _base_app(config)
    web.init_machine_app(app)
    return app


def _base_app(config: Mapping[str, Any] | None) -> Flask:
    settings = load_settings(overrides=config)
    app = Flask(
        __name__,
        instance_path=str(settings.instance_path.resolve()),
        template_folder="web/templates",
        static_folder="web/static",
    )
    app.config.update(
        SECRET_KEY=settings.secret_key,
        TESTING=settings.testing,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.public_url.startswith("https://"),
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
        WTF_CSRF_ENABLED=settings.extra.get("csrf", True),
    )
    app.extensions["huifang.settings"] = settings
    database.appsession.init_app(app, settings.effective_database_url, settings.database_pool_size)
    jobs.connection.init_app(app, settings)
    return app
