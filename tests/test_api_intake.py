"""The POS intake API: refusals are JSON and store nothing; batches keep good rows and name bad ones."""

from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import func, select

from membership.catalog import Product
from membership.importing.runs import ImportRowError, ImportRun
from membership.importing.tokens import create_token, revoke_tokens
from membership.member import ConsentEvent, Member
from membership.purchase import Purchase
from web.api import MAX_BODY_BYTES, MAX_ROWS

TABLES = (Member, Purchase, ConsentEvent, ImportRun, ImportRowError)


@pytest.fixture
def pos(session, factory):
    """A store with a live token, a product and a member to buy with."""
    store = factory.store(code="SH01", region="CN", timezone="Asia/Shanghai")
    other = factory.store(code="BJ02", region="CN")
    token = create_token(session, store)
    other_token = create_token(session, other)
    factory.product(name="Balls").sku = "TT-BALL"
    factory.member(store, card_number="M1")
    session.commit()
    return store, token, other_token


def counts(session) -> dict[str, int]:
    session.rollback()
    return {m.__name__: session.scalar(select(func.count()).select_from(m)) for m in TABLES}


def post(client, path: str, body, token: str | None, **kw):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post(path, data=data, headers=headers, content_type="application/json", **kw)


MEMBER = {"card_number": "N1", "name": "New Member", "phone": "13800138111", "sms_consent": True}
PURCHASE = {"line_id": "POS-1", "card_number": "M1", "sku": "TT-BALL", "purchased_at": "2024-05-01 10:00"}


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer hf_wrong",
        "Basic dXNlcjpwYXNz",
        "Bearer ",
        "hf_token-without-scheme",
        "Bearer " + "x" * 500,
    ],
)
def test_missing_or_wrong_token_is_401_json_and_stores_nothing(client, session, pos, authorization):
    before = counts(session)
    headers = {"Authorization": authorization} if authorization else {}
    for path, row in (("/api/v1/members", MEMBER), ("/api/v1/purchases", PURCHASE)):
        response = client.post(path, json={"rows": [row]}, headers=headers)
        assert response.status_code == 401 and response.is_json, path
        assert response.get_json()["error"] == "Unauthorized"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert counts(session) == before


def test_revoked_token_is_401(client, session, pos):
    store, token, _ = pos
    assert post(client, "/api/v1/members", {"rows": [MEMBER]}, token).status_code == 200
    revoke_tokens(session, store)
    session.commit()
    before = counts(session)
    response = post(client, "/api/v1/members", {"rows": [{**MEMBER, "name": "Changed"}]}, token)
    assert response.status_code == 401 and response.is_json
    assert counts(session) == before
    assert session.scalar(select(Member.name).where(Member.card_number == "N1")) == "New Member"


def test_body_over_the_limit_is_413_json_and_stores_nothing(client, session, pos):
    _, token, _ = pos
    before = counts(session)
    big = json.dumps({"rows": [MEMBER], "padding": "x" * MAX_BODY_BYTES})
    response = post(client, "/api/v1/members", big, token)
    assert response.status_code == 413 and response.is_json
    too_many = {"rows": [{**MEMBER, "card_number": f"N{i}"} for i in range(MAX_ROWS + 1)]}
    response = post(client, "/api/v1/members", too_many, token)
    assert response.status_code == 413 and response.is_json
    assert counts(session) == before


def test_chunked_body_over_the_limit_is_413(client, session, pos):
    _, token, _ = pos
    before = counts(session)
    body = json.dumps({"rows": [MEMBER], "padding": "x" * MAX_BODY_BYTES}).encode()
    response = client.post(
        "/api/v1/members",
        input_stream=io.BytesIO(body),  # no Content-Length: the limit must hold while reading
        environ_overrides={"wsgi.input_terminated": True},  # what a server sets for a chunked body
        headers={"Authorization": f"Bearer {token}", "Transfer-Encoding": "chunked"},
        content_type="application/json",
    )
    assert response.status_code == 413 and response.is_json
    assert counts(session) == before


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{not json",
        b'{"rows": [',
        b"\xff\xfe\x00garbage",
        b"[]",
        b'"rows"',
        b"null",
        b"42",
        b'{"rows": {}}',
        b'{"rows": []}',
        b'{"rows": "N1"}',
        b'{"data": [{"card_number": "N1"}]}',
        b'{"rows": [{"card_number": "N1", "name": "x"}], "rows": 1}',
    ],
)
def test_malformed_or_misshapen_json_is_400_json_and_stores_nothing(client, session, pos, body):
    _, token, _ = pos
    before = counts(session)
    response = post(client, "/api/v1/members", body, token)
    assert response.status_code == 400 and response.is_json
    assert response.get_json()["error"] == "Bad Request"
    assert counts(session) == before


def test_mixed_batch_keeps_every_good_row_and_reports_every_bad_one(client, session, pos):
    _, token, _ = pos
    rows = [
        PURCHASE,  # 0 good
        {**PURCHASE, "line_id": "POS-2", "card_number": "NOBODY"},  # 1 unknown member
        {**PURCHASE, "line_id": "POS-3", "sku": "NO-SUCH-SKU"},  # 2 unknown product
        {**PURCHASE, "line_id": "POS-4", "purchased_at": "01/05/2024"},  # 3 ambiguous date
        "not an object",  # 4
        {**PURCHASE, "line_id": "POS-5", "quantity": 2, "amount": "59.80"},  # 5 good
        {**PURCHASE, "line_id": "POS-6", "amount": "-1"},  # 6 negative amount
        {**PURCHASE, "line_id": "POS-7", "store": "BJ02"},  # 7 another store's code
        {"line_id": "POS-8", "card_number": "M1", "sku": "TT-BALL"},  # 8 no date
        {**PURCHASE, "line_id": "POS-9", "amount": 12.5},  # 9 good: JSON numbers are fine
    ]
    response = post(client, "/api/v1/purchases", {"rows": rows}, token)
    assert response.status_code == 207 and response.is_json
    body = response.get_json()
    assert (body["received"], body["inserted"], body["rejected"]) == (10, 3, 7)
    bad = {e["index"] for e in body["errors"]}
    assert bad == {1, 2, 3, 4, 6, 7, 8}
    by_index = {e["index"]: e for e in body["errors"]}
    assert by_index[1]["column"] == "card_number" and by_index[3]["column"] == "purchased_at"
    session.rollback()
    stored = set(session.scalars(select(Purchase.external_line_id)))
    assert stored == {"POS-1", "POS-5", "POS-9"}


def test_all_bad_batch_is_400_with_the_reasons(client, session, pos):
    _, token, _ = pos
    response = post(client, "/api/v1/members", {"rows": [{"name": "no card"}, {"card_number": "X"}]}, token)
    assert response.status_code == 400 and response.is_json
    assert [e["index"] for e in response.get_json()["errors"]] == [0, 1]
    assert counts(session)["Member"] == 1


def test_posting_the_same_batch_twice_changes_nothing(client, session, pos):
    _, token, _ = pos
    members = {"rows": [MEMBER, {**MEMBER, "card_number": "N2", "phone": "", "email": "n2@example.com"}]}
    purchases = {"rows": [PURCHASE, {**PURCHASE, "line_id": "POS-2", "quantity": "3"}]}
    first = [post(client, path, body, token).get_json() for path, body in _batches(members, purchases)]
    assert [b["inserted"] for b in first] == [2, 2]
    session.rollback()
    before = {m: _snapshot(session, m) for m in (Member, Purchase, ConsentEvent, Product)}
    second = [post(client, path, body, token).get_json() for path, body in _batches(members, purchases)]
    assert [(b["inserted"], b["updated"], b["unchanged"]) for b in second] == [(0, 0, 2), (0, 0, 2)]
    session.rollback()
    assert {m: _snapshot(session, m) for m in before} == before


def test_rows_land_in_the_tokens_store(client, session, pos):
    store, token, _ = pos
    assert post(client, "/api/v1/members", {"rows": [MEMBER]}, token).status_code == 200
    session.rollback()
    member = session.scalar(select(Member).where(Member.card_number == "N1"))
    assert member.home_store_id == store.id and member.phone == "+8613800138111"
    run = session.get(ImportRun, member.last_import_run_id)
    assert run.source == "api" and run.store_id == store.id


def _batches(members, purchases):
    return (("/api/v1/members", members), ("/api/v1/purchases", purchases))


def _snapshot(session, model) -> list[tuple]:
    table = model.__table__
    return [tuple(row) for row in session.execute(select(table).order_by(table.c.id))]


def test_a_full_batch_above_the_form_limit_is_accepted(app, client, session, pos):
    """The app-wide 2 MB limit is for forms: a POS batch may use the API's own 8 MiB."""
    _, token, _ = pos
    rows = [
        {"card_number": f"F{i:05d}", "name": f"Member {i}", "pos_note": "x" * 500} for i in range(MAX_ROWS)
    ]
    body = json.dumps({"rows": rows})
    assert app.config["MAX_CONTENT_LENGTH"] < len(body) < MAX_BODY_BYTES
    response = post(client, "/api/v1/members", body, token)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["inserted"] == MAX_ROWS
