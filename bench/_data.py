"""Shared bench data: a migrated embedded PostgreSQL loaded with members and purchases via COPY."""

from __future__ import annotations

import datetime as dt
import io
import time

import numpy as np
import psycopg

from campaigns.campaign import Campaign, CampaignKind, CampaignStatus
from database.engine import make_engine
from migrations import upgrade
from tests.servers import PostgresServer

CATEGORIES = [
    ("shuttle", 30),
    ("tt-ball", 60),
    ("string", 90),
    ("rubber", 180),
    ("shoe", 300),
    ("goggle", 365),
]


INTERESTS = ["running", "hiking", "tennis", "yoga", "cycling", "swimming", "table-tennis", "climbing"]


def _interests(i: int) -> str:
    """One or two interests per member, none for every fifth: each interest on a fifth of members or so."""
    if i % 5 == 0:
        return "[]"
    first = INTERESTS[i % 8]
    if i % 3:
        return f'["{first}"]'
    return f'["{first}", "{INTERESTS[(i // 3 + 3) % 8]}"]'


def replenishment_campaign(window_days: int = 14) -> Campaign:
    """The benches' active replenishment campaign over both channels (content added by the caller)."""
    return Campaign(
        name="bench replenishment",
        kind=CampaignKind.REPLENISHMENT,
        status=CampaignStatus.ACTIVE,
        holdout_pct=10,
        channels=["sms", "email"],
        settings={"lead_days": 7, "window_days": window_days},
    )


def start_postgres() -> tuple[PostgresServer, str]:
    server = PostgresServer()
    url = server.create_database()
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return server, url


def _copy(conn: psycopg.Connection, table: str, columns: str, lines) -> None:
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for chunk in lines:
            copy.write(chunk)


def load(url: str, members: int, purchases: int, now: dt.datetime, seed: int = 7) -> dict[str, float]:
    """Load stores, a catalogue with prior estimates, ``members`` members and ``purchases`` lines."""
    rng = np.random.default_rng(seed)
    timings = {}
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "INSERT INTO stores (code, name, timezone, locale, region, quiet_start, quiet_end) "
            "VALUES ('S1', 'Bench store', 'UTC', 'en', 'GB', '00:00', '00:00')"
        )
        for i, (code, days) in enumerate(CATEGORIES, start=1):
            conn.execute(
                "INSERT INTO categories (id, code, name, lifetime_prior_days) VALUES (%s, %s, %s, %s)",
                (i, code, code, days),
            )
            for j in range(3):
                conn.execute(
                    "INSERT INTO products (sku, name, category_id) VALUES (%s, %s, %s)",
                    (f"{code}-{j}", f"{code} {j}", i),
                )
        started = time.perf_counter()

        def member_lines():
            for start in range(0, members, 100_000):
                ids = np.arange(start, min(start + 100_000, members))
                yield "".join(
                    f"C{i}\tMember {i}\t+4477{i:08d}\tm{i}@example.com\ten\t1\tstandard\t{_interests(i)}"
                    f"\tt\tf\t{now}\t{now}\n"
                    for i in ids
                )

        _copy(
            conn,
            "members",
            "card_number, name, phone, email, locale, home_store_id, tier, interests, "
            "sms_consent, email_consent, joined_at, updated_at",
            member_lines(),
        )
        timings["members_copy_s"] = time.perf_counter() - started
        started = time.perf_counter()
        n_products = len(CATEGORIES) * 3
        epoch = (now - dt.timedelta(days=730)).timestamp()

        def purchase_lines():
            for start in range(0, purchases, 500_000):
                n = min(500_000, purchases - start)
                member_ids = rng.integers(1, members + 1, n)
                product_ids = rng.integers(1, n_products + 1, n)
                seconds = rng.uniform(0, 730 * 86400, n) + epoch
                stamps = np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s")
                buf = io.StringIO()
                for k in range(n):
                    buf.write(f"L{start + k}\t{member_ids[k]}\t{product_ids[k]}\t1\t{stamps[k]}\t1\t10\n")
                yield buf.getvalue()

        # Secondary indexes are rebuilt after the load: maintaining them row by row triples COPY time.
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'purchases' AND indexname LIKE 'ix_%'"
        ).fetchall()
        for name, _definition in indexes:
            conn.execute(f"DROP INDEX {name}")
        _copy(
            conn,
            "purchases",
            "external_line_id, member_id, product_id, store_id, purchased_at, quantity, amount",
            purchase_lines(),
        )
        for _name, definition in indexes:
            conn.execute(definition)
        timings["purchases_copy_s"] = time.perf_counter() - started
        conn.commit()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("ANALYZE")
    return timings
