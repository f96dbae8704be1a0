"""Login, logout and the role check every page uses."""

from __future__ import annotations

from functools import wraps

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import LoginManager, current_user, login_required, login_user, logout_user

from accounts.staff import Role, StaffUser, authenticate
from database.appsession import db_session

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
login_manager.login_view = "auth.login"


def init_app(app) -> None:
    login_manager.init_app(app)


@login_manager.user_loader
def _load_user(user_id: str) -> StaffUser | None:
    return db_session().get(StaffUser, int(user_id))


def roles_required(*roles: Role):
    """Allow the listed roles (admins always); anonymous users go to the login page."""

    def decorate(view):
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if current_user.role is not Role.ADMIN and current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorate


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "POST":
        user = authenticate(db_session(), request.form.get("email", ""), request.form.get("password", ""))
        if user:
            login_user(user)
            return redirect(
                url_for("campaigns.dashboard" if user.role is not Role.AGENT else "callbacks.queue")
            )
        flash(_("Wrong e-mail or password."))
    return render_template("login.html")


@bp.post("/logout")
@login_required
def logout():
    logout_user()
    return redirect(url_for("auth.login"))
