"""The bench's CSV files: members, products and purchases, generated deterministically."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

SKUS = [f"SKU-{i:04d}" for i in range(200)]
START = dt.datetime(2024, 1, 1, 9, 0)


def write_members(path: Path, count: int) -> None:
    rng = random.Random(1)
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write("card_number,name,phone,email,sms_consent,email_consent,interests,joined_at,store\n")
        for start in range(0, count, 50_000):
            out.write(
                "".join(
                    f"M{i:08d},Member {i},1{rng.choice('3589')}{i:09d},m{i}@example.com,"
                    f"{'yes' if i % 3 else 'no'},{'yes' if i % 2 else ''},table-tennis;running,"
                    f"2023-{1 + i % 12:02d}-{1 + i % 28:02d},S1\n"
                    for i in range(start, min(start + 50_000, count))
                )
            )


def write_products(path: Path) -> None:
    with open(path, "w", encoding="utf-8") as out:
        out.write("sku,name,category,price,lifetime_days\n")
        for i, sku in enumerate(SKUS):
            out.write(f"{sku},Product {i},cat-{i % 12},{10 + i}.90,{30 + i % 300}\n")


def write_purchases(path: Path, count: int, members: int) -> None:
    rng = random.Random(2)
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write("line_id,card_number,sku,purchased_at,quantity,amount\n")
        for start in range(0, count, 50_000):
            lines = []
            for i in range(start, min(start + 50_000, count)):
                at = START + dt.timedelta(minutes=i % 900_000)
                lines.append(
                    f"O{i // 3:08d}-{i % 3},M{rng.randrange(members):08d},{rng.choice(SKUS)},"
                    f"{at:%Y-%m-%d %H:%M:%S},{1 + i % 3},{rng.randrange(100, 99_999) / 100:.2f}\n"
                )
            out.write("".join(lines))
