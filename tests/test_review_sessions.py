"""Login sessions and parallel logins: a lockout that holds under 30 simultaneous guesses, tokens that end
on logout, password reset and removal, and no exception from simultaneous first logins."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest

from harness.records.review import Account
from harness.review import auth as review_auth
from harness.review.auth import FREE_FAILURES, add_account, lock_delay, login, remove_account, reset_password
from harness.review.sessions import SESSION_TTL, create_session, end_session, session_account
from harness.store import Store

T0 = datetime(2026, 1, 1, 9, 0, 0)


@pytest.fixture
def store(any_store) -> Store:
    """A new store, a file or a team store (every test here runs on both back-ends)."""
    return any_store


def _parallel(n: int, fn) -> list:
    barrier, results, errors = threading.Barrier(n), [None] * n, []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = fn(i)
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors[:3]
    return results


def _counting_verify(monkeypatch) -> list[int]:
    checked, lock, real = [0], threading.Lock(), review_auth._verify

    def verify(password, salt, digest):
        with lock:
            checked[0] += 1
        return real(password, salt, digest)

    monkeypatch.setattr(review_auth, "_verify", verify)
    return checked


def test_thirty_parallel_wrong_passwords_check_at_most_the_free_attempts(store, monkeypatch):
    add_account(store, "victim")
    checked = _counting_verify(monkeypatch)
    results = _parallel(30, lambda i: login(store, "victim", f"guess-{i}", now=T0))
    assert checked[0] == FREE_FAILURES  # the rest were refused before any password was looked at
    refused = [r for r in results if r.message.startswith("too many failed logins")]
    assert len(refused) == 30 - FREE_FAILURES and all(r.account is None for r in results)
    # after the lock ends, 20 parallel guesses: exactly one is checked, and it locks the name again (longer)
    checked[0] = 0
    after = T0 + lock_delay(FREE_FAILURES) + timedelta(seconds=1)
    results = _parallel(20, lambda i: login(store, "victim", f"again-{i}", now=after))
    assert checked[0] == 1
    assert sum(r.message.startswith("too many") for r in results) == 19


def test_thirty_two_simultaneous_first_logins_raise_nothing(store):
    names = [f"victim{i % 4}" for i in range(32)]
    passwords = {n: add_account(store, n) for n in set(names)}
    results = _parallel(32, lambda i: login(store, names[i], passwords[names[i]] if i % 2 else "wrong", now=T0))
    assert all(r.message in {"logged in", "wrong name or password"} or r.message.startswith(("wrong", "too many"))
               for r in results)


def test_a_session_token_ends_on_logout_reset_and_removal(store):
    for name in ("alice", "bob", "carol"):
        add_account(store, name)
    tokens = {name: create_session(store, Account(name, "reviewer")) for name in ("alice", "bob", "carol")}
    second_alice = create_session(store, Account("alice", "reviewer"))
    assert all(session_account(store, t).name == n for n, t in tokens.items())
    end_session(store, tokens["alice"])  # logout ends this session only
    assert session_account(store, tokens["alice"]) is None
    assert session_account(store, second_alice).name == "alice"
    reset_password(store, "bob")
    assert session_account(store, tokens["bob"]) is None
    remove_account(store, "carol")
    assert session_account(store, tokens["carol"]) is None
    assert session_account(store, second_alice) is not None


def test_a_forged_tampered_or_expired_token_is_refused(store, new_store_address):
    add_account(store, "alice")
    token = create_session(store, Account("alice", "reviewer"))
    assert session_account(store, token) is not None
    assert session_account(store, token[:-2] + ("AA" if token[-2:] != "AA" else "BB")) is None
    assert session_account(store, "not-a-token") is None and session_account(store, "") is None
    assert session_account(store, token, now=datetime.now() + SESSION_TTL + timedelta(minutes=1)) is None
    other = Store(new_store_address("other.duckdb"))
    add_account(other, "alice")
    assert session_account(other, token) is None  # signed with another store's secret
    stored = store.query("SELECT token_hash FROM review_sessions")["token_hash"].tolist()
    assert stored and all(token not in h for h in stored)  # only a digest of the id is kept
