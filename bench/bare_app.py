"""The baseline for bench/webhook.py: a bare Flask endpoint that inserts one row and answers."""

from __future__ import annotations

import os

from flask import Flask, request
from sqlalchemy import create_engine, text

app = Flask(__name__)
_engine = create_engine(os.environ["BARE_DATABASE_URL"], pool_size=20)  # as Huifang's default
_INSERT = text("INSERT INTO bench_bare (provider_id, body) VALUES (:sid, :body) ON CONFLICT DO NOTHING")


@app.post("/bare")
def bare():
    with _engine.begin() as conn:
        conn.execute(
            _INSERT, {"sid": request.form.get("MessageSid", ""), "body": request.form.get("Body", "")}
        )
    return "<Response></Response>", 200, {"Content-Type": "application/xml"}
