"""The declarative base every model inherits; naming conventions keep migrations stable."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, DateTime, MetaData
from sqlalchemy.orm import DeclarativeBase

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """All timestamps are naive UTC; local time exists only at the edges (quiet hours, display)."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dt.datetime: DateTime(), dict: JSON, list: JSON}


def utcnow() -> dt.datetime:
    """Naive UTC now, the only clock the models use."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
