"""API tokens per store for POS systems that push purchases and members; only a hash is stored."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import ForeignKey, String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from database.base import Base, utcnow
from membership.store import Store

PREFIX = "hf_"


class StoreApiToken(Base):
    """A bearer token that lets one store's POS write through the API; revoked, never deleted."""

    __tablename__ = "store_api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None]


def _hash(token: str) -> str:
    # 256 random bits need no slow password hash: a plain SHA-256 cannot be brute-forced.
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, store: Store) -> str:
    """A new token for ``store``; the plain value is returned once and never stored."""
    token = PREFIX + secrets.token_urlsafe(32)
    session.add(StoreApiToken(store_id=store.id, token_hash=_hash(token)))
    session.flush()
    return token


def store_for_token(session: Session, token: str | None) -> Store | None:
    """The store a live token belongs to, or None for a missing, unknown or revoked token."""
    if not token or len(token) > 200:
        return None
    stmt = (
        select(Store)
        .join(StoreApiToken, StoreApiToken.store_id == Store.id)
        .where(StoreApiToken.token_hash == _hash(token), StoreApiToken.revoked_at.is_(None))
    )
    return session.scalar(stmt)


def revoke_tokens(session: Session, store: Store) -> int:
    """Revoke every live token of ``store`` (a leaked POS credential); returns how many."""
    result = session.execute(
        update(StoreApiToken)
        .where(StoreApiToken.store_id == store.id, StoreApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return result.rowcount
