"""The web layer: blueprints that parse input, call the domain, commit and render."""

from __future__ import annotations

from flask import Flask, Request
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFProtect

from database.base import utcnow

csrf = CSRFProtect()


def init_app(app: Flask) -> None:
    """Register login, CSRF, languages, security headers and every blueprint."""
    from web import (
        api,
        auth,
        callbacks,
        campaigns,
        designer,
        i18n,
        imports,
        inbox,
        members,
        products,
        unsubscribe,
        webhooks,
    )

    app.session_interface = _SessionInterface()
    csrf.init_app(app)
    auth.init_app(app)
    i18n.init_app(app)
    for module in (auth, campaigns, designer, members, products, callbacks, inbox, imports):
        app.register_blueprint(module.bp)
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(unsubscribe.bp)
    from web import advice, links

    app.register_blueprint(links.bp)  # public GET redirect: the signed token is the credential
    app.register_blueprint(advice.bp)
    app.register_blueprint(api.bp)
    csrf.exempt(api.bp)  # POS systems authenticate with a per-store bearer token
    csrf.exempt(webhooks.bp)  # webhooks authenticate by signature or token, not by session
    csrf.exempt(unsubscribe.bp)  # RFC 8058: mail clients POST the one-click link without our form
    app.after_request(_security_headers)
    app.context_processor(lambda: {"now_utc": utcnow})


def init_machine_app(app: Flask) -> None:
    """Register only what machines call (provider webhooks, the POS API): no pages, logins, CSRF
    or languages, whose per-request hooks cost the busiest endpoints without serving them."""
    from web import api, webhooks

    app.session_interface = _NoSessions()
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(api.bp)
    app.after_request(_security_headers)


class _NoSessions(SecureCookieSessionInterface):
    """Every caller authenticates per request (a signature or a bearer token)."""

    def open_session(self, app: Flask, request: Request):
        return self.make_null_session(app)


class _SessionInterface(SecureCookieSessionInterface):
    """No cookie session for machine callers (webhooks, the POS API): they authenticate per request,
    and opening a signed session costs a serializer per call on the busiest endpoints."""

    def open_session(self, app: Flask, request: Request):
        if request.path.startswith(MACHINE_PATHS):
            return self.make_null_session(app)
        return super().open_session(app, request)


MACHINE_PATHS = ("/webhooks/", "/api/")


def _security_headers(response):
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault(
        "Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'"
    )
    return response
