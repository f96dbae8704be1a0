"""The UI's languages: Flask-Babel, the per-user locale, the language switch and catalogue compilation.

The catalogues live as ``.po`` files under ``web/translations``; the ``.mo`` files Flask-Babel reads
are built from them when the app starts (and only when a ``.po`` is newer), so a fresh clone, an
editable install and a wheel all serve the same translations without a compiled file in git.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Blueprint, Flask, flash, has_request_context, redirect, request, url_for
from flask_babel import Babel, get_locale, gettext, refresh
from flask_login import current_user, login_required

from accounts.staff import Role
from database.appsession import db_session
from web import domain_text

# The value stored in StaffUser.locale → the catalogue directory Flask-Babel looks up.
UI_LOCALES = {"en": "en", "zh-CN": "zh_Hans_CN"}
TRANSLATIONS = Path(__file__).parent / "translations"

bp = Blueprint("i18n", __name__)
babel = Babel()


def init_app(app: Flask) -> None:
    """Compile the catalogues if needed, then configure Flask-Babel and the language switch."""
    directory = compile_catalogues(TRANSLATIONS, Path(app.instance_path) / "translations")
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(directory)
    app.jinja_env.policies["ext.i18n.trimmed"] = True  # {% trans %} blocks match pybabel's trimmed msgids
    babel.init_app(app, default_locale="en", locale_selector=select_locale)
    # Flask-Babel caches the locale on ``g``, which outlives a request when an app context was already
    # pushed (tests, jobs): choose afresh for every request.
    app.before_request(refresh)
    app.register_blueprint(bp)
    app.jinja_env.filters.update(label=domain_text.label, tr=domain_text.tr)
    app.context_processor(lambda: {"ui_lang": ui_lang()})


def compile_catalogues(source: Path, fallback: Path) -> Path:
    """Write each ``messages.mo`` next to its ``.po`` when missing or stale; returns the directory to use.

    An install whose package directory is read-only gets its catalogues compiled into ``fallback``
    (the instance folder) instead. The write goes through a temporary file and a rename, so several
    processes starting at once never read a half-written catalogue.
    """
    catalogues = sorted(source.glob("*/LC_MESSAGES/messages.po"))
    try:
        for po in catalogues:
            _compile(po, po.with_suffix(".mo"))
        return source
    except OSError:
        for po in catalogues:
            _compile(po, fallback / po.relative_to(source).with_suffix(".mo"))
        return fallback


def _compile(po: Path, mo: Path) -> None:
    if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
        return
    with po.open("rb") as handle:
        catalog = read_po(handle, locale=po.parent.parent.name)
    mo.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=mo.parent, prefix=".messages-", suffix=".mo")
    try:
        with os.fdopen(fd, "wb") as handle:
            write_mo(handle, catalog, use_fuzzy=False)
        os.replace(tmp, mo)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def select_locale() -> str:
    """The signed-in user's choice, else the browser's best match, else English."""
    if not has_request_context():
        return "en"
    if current_user.is_authenticated and current_user.locale in UI_LOCALES:
        return UI_LOCALES[current_user.locale]
    best = request.accept_languages.best_match(["en", "zh-CN", "zh"], default="en")
    return UI_LOCALES["zh-CN"] if best.startswith("zh") else "en"


def ui_lang() -> str:
    """The page's ``lang`` attribute: ``zh-CN`` or ``en``."""
    locale = get_locale()
    return "zh-CN" if locale is not None and locale.language == "zh" else "en"


@bp.post("/language")
@login_required
def set_language():
    """Store the signed-in user's UI language and go back to the page they were on."""
    choice = request.form.get("locale", "")
    if choice in UI_LOCALES:
        current_user.locale = choice
        db_session().commit()
        refresh()
    else:
        flash(gettext("Choose English or Simplified Chinese."))
    home = "callbacks.queue" if current_user.role is Role.AGENT else "campaigns.dashboard"
    return redirect(_same_site(request.referrer) or url_for(home))


def _same_site(url: str | None) -> str | None:
    """The referring page when it belongs to this site; never redirect anywhere else."""
    if url and url.startswith(request.host_url):
        return "/" + url[len(request.host_url) :]
    return None
