"""Staff users and their roles; passwords hashed with scrypt (werkzeug)."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import ForeignKey, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

from database.base import Base, utcnow
from membership.member import str_enum


class Role(enum.StrEnum):
    ADMIN = "admin"
    MARKETER = "marketer"
    AGENT = "agent"


class StaffUser(Base):
    """Someone who logs into the web UI."""

    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[Role] = mapped_column(str_enum(Role))
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id"))
    locale: Mapped[str] = mapped_column(String(16), default="en")
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    # Flask-Login's protocol, kept here so the web layer needs no wrapper class.
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.id)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)


def create_staff(session: Session, email: str, name: str, password: str, role: Role) -> StaffUser:
    """Create a staff user; refuses a short password or a duplicate e-mail."""
    if len(password) < 8:
        raise ValueError("password must have at least 8 characters")
    email = email.strip().lower()
    if session.scalar(select(StaffUser.id).where(StaffUser.email == email)):
        raise ValueError(f"a staff user {email} already exists")
    user = StaffUser(email=email, name=name, password_hash=generate_password_hash(password), role=role)
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, email: str, password: str) -> StaffUser | None:
    """The active user with these credentials, or None."""
    user = session.scalar(select(StaffUser).where(StaffUser.email == email.strip().lower()))
    if user and user.active and user.check_password(password):
        return user
    return None
