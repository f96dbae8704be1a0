"""Member search on both databases: substring in any case, exact card / e-mail / national phone first,
wildcards typed by the agent taken literally, and the page escaping what it shows."""

from accounts.staff import Role
from membership.profile import search_members
from tests.test_web import _login


def _names(members):
    return [m.name for m in members]


def test_substring_matches_any_field_in_any_case(session, factory):
    store = factory.store(region="CN")
    wang = factory.member(store, name="Wang Fang", email="Wang.Fang@Example.com", phone="+8613812345678")
    factory.member(store, name="Li Lei", email="li@example.com", phone="+8613900000001")
    session.commit()
    assert _names(search_members(session, "wang fang")) == ["Wang Fang"]
    assert _names(search_members(session, "FANG@example")) == ["Wang Fang"]
    assert _names(search_members(session, "1234567")) == ["Wang Fang"]
    assert _names(search_members(session, wang.card_number)) == ["Wang Fang"]
    assert _names(search_members(session, "nobody")) == []


def test_exact_matches_come_first_and_a_national_phone_finds_the_e164_one(session, factory):
    store = factory.store(region="CN")
    # Earlier ids whose text merely contains the card number of the one we want.
    factory.member(store, name="Decoy A", card_number="X100")
    factory.member(store, name="Decoy B", card_number="X1000")
    target = factory.member(store, name="Target", card_number="X10", phone="+8613712345678")
    session.commit()
    assert _names(search_members(session, "X10")) == ["Target", "Decoy A", "Decoy B"]
    assert _names(search_members(session, "137 1234 5678")) == ["Target"]  # typed as dialled in China
    assert _names(search_members(session, "x10", limit=2)) == ["Decoy A", "Decoy B"]  # case-blind, no exact
    assert search_members(session, "X10", limit=1) == [target]


def test_wildcards_are_literal(session, factory):
    store = factory.store()
    factory.member(store, name="Fifty% Off")
    factory.member(store, name="Fifty Off")
    factory.member(store, name="a_b")
    factory.member(store, name="axb")
    session.commit()
    assert _names(search_members(session, "y%")) == ["Fifty% Off"]
    assert _names(search_members(session, "a_b")) == ["a_b"]
    assert _names(search_members(session, "\\")) == []


def test_search_page_lists_matches_escaped(client, session, factory):
    factory.member(name="<b>Bold</b> Zhou")
    agent = factory.staff(Role.AGENT)
    session.commit()
    _login(client, agent.email)
    page = client.get("/members/?q=zhou").get_data(as_text=True)
    assert "&lt;b&gt;Bold&lt;/b&gt; Zhou" in page and "<b>Bold</b>" not in page
