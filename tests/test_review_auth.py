"""Reviewer accounts: only argon2id hashes are stored; one-time passwords; failures lock a name atomically;
sessions end on logout, reset and removal."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

import pytest
from argon2 import PasswordHasher
from pg_server import address_text
from typer.testing import CliRunner

from harness.errors import HarnessError
from harness.review.auth import (
    FREE_FAILURES,
    accounts,
    add_account,
    change_password,
    current_account,
    has_accounts,
    lock_delay,
    login,
    remove_account,
    reset_password,
)
from harness.store import Store

T0 = datetime(2026, 1, 1, 9, 0, 0)


@pytest.fixture
def store(any_store) -> Store:
    """A new store, a file or a team store (every test here runs on both back-ends)."""
    return any_store


def test_only_an_argon2id_hash_is_stored(store):
    password = add_account(store, "alice")
    add_account(store, "bob")
    rows = store.query("SELECT name, role, salt, password_hash FROM reviewers ORDER BY name")
    assert list(rows["name"]) == ["alice", "bob"] and set(rows["role"]) == {"reviewer"}
    alice, bob = (bytes(h).decode() for h in rows["password_hash"])
    assert password not in store.query("SELECT * FROM reviewers").to_csv()
    assert alice.startswith("$argon2id$") and PasswordHasher().verify(alice, password)
    params = dict(p.split("=") for p in alice.split("$")[3].split(","))
    assert int(params["m"]) >= 64 * 1024 and int(params["t"]) >= 3  # RFC 9106's low-memory choice or more
    assert alice.split("$")[4] != bob.split("$")[4]  # a salt per account


def test_a_legacy_scrypt_hash_still_logs_in_and_is_upgraded(store):
    password = add_account(store, "alice")
    salt = b"s" * 16
    legacy = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, maxmem=64 * 1024 * 1024, dklen=32)
    store.transaction(lambda con: con.execute("UPDATE reviewers SET salt = ?, password_hash = ?", [salt, legacy]))
    assert login(store, "alice", password + "x").account is None
    assert login(store, "alice", password).account is not None
    row = store.query("SELECT salt, password_hash FROM reviewers").iloc[0]
    assert bytes(row["salt"]) == b"" and bytes(row["password_hash"]).startswith(b"$argon2id$")
    assert login(store, "alice", password).account is not None


def test_a_given_password_is_one_time(store):
    given = add_account(store, "alice")
    first = login(store, "alice", given)
    assert first.account is not None and first.must_change_password
    assert change_password(store, "alice", given, "short").account is None  # too short: nothing changes
    assert change_password(store, "alice", given, "alice-chose-this", "alice-chose-that").account is None
    assert change_password(store, "alice", given, "alice-chose-this").account is not None
    assert login(store, "alice", given).account is None  # the one-time password is spent
    again = login(store, "alice", "alice-chose-this")
    assert again.account is not None and not again.must_change_password
    reset = reset_password(store, "alice")
    assert login(store, "alice", reset).must_change_password


def test_login_and_roles(store):
    assert not has_accounts(store)
    password = add_account(store, "root", role="admin")
    assert has_accounts(store)
    result = login(store, "root", password)
    assert result.account is not None and result.account.role == "admin"
    assert login(store, "root", password + "x").account is None
    assert current_account(store, "root").role == "admin"
    with pytest.raises(HarnessError, match="already exists"):
        add_account(store, "root")
    with pytest.raises(HarnessError, match="--role boss"):
        add_account(store, "carol", role="boss")
    with pytest.raises(HarnessError, match="reviewer name"):
        add_account(store, "bad name")


def test_repeated_failures_lock_the_name_exponentially(store):
    password = add_account(store, "alice")
    for i in range(FREE_FAILURES - 1):
        assert login(store, "alice", "wrong", now=T0 + timedelta(seconds=i)).retry_after_s == 0
    now = T0 + timedelta(seconds=10)
    third = login(store, "alice", "wrong", now=now)
    assert third.account is None and third.retry_after_s == pytest.approx(lock_delay(FREE_FAILURES).total_seconds())
    # while locked even the right password is refused, without counting another failure
    locked = login(store, "alice", password, now=now + timedelta(seconds=1))
    assert locked.account is None and "too many failed logins" in locked.message
    later = now + lock_delay(FREE_FAILURES) + timedelta(seconds=1)
    fourth = login(store, "alice", "wrong", now=later)
    assert fourth.retry_after_s == pytest.approx(2 * third.retry_after_s)  # doubled
    stored = store.query("SELECT failures, locked_until FROM login_throttle WHERE name = 'alice'").iloc[0]
    assert stored["failures"] == FREE_FAILURES + 1
    after = later + lock_delay(FREE_FAILURES + 1) + timedelta(seconds=1)
    assert login(store, "alice", password, now=after).account is not None
    assert store.query("SELECT * FROM login_throttle WHERE name = 'alice'").empty  # success clears it
    assert lock_delay(100).total_seconds() == 15 * 60  # capped


def test_unknown_names_are_throttled_too(store):
    add_account(store, "alice")
    for i in range(FREE_FAILURES):
        result = login(store, "mallory", "guess", now=T0 + timedelta(seconds=i))
    assert result.account is None and result.message.startswith("wrong name or password")
    assert result.retry_after_s > 0
    assert login(store, "mallory", "guess", now=T0 + timedelta(seconds=3)).message.startswith("too many")


def test_reset_and_remove(store):
    old = add_account(store, "alice")
    for i in range(FREE_FAILURES):
        login(store, "alice", "wrong", now=datetime.now() + timedelta(seconds=i))
    new = reset_password(store, "alice")
    assert new != old
    assert login(store, "alice", old).account is None
    assert login(store, "alice", new).account is not None  # the reset lifted the lock
    remove_account(store, "alice")
    assert accounts(store) == [] and current_account(store, "alice") is None
    with pytest.raises(HarnessError, match="not found"):
        reset_password(store, "alice")


def test_cli_add_reviewer_prints_a_one_time_password(new_store_address):
    from harness.cli import _register, app

    _register()
    db = address_text(new_store_address("cli.duckdb"))
    out = CliRunner().invoke(app, ["review", "add-reviewer", "alice", "--role", "admin", "--db", db])
    assert out.exit_code == 0, out.output
    password = out.output.strip().splitlines()[-1]
    assert login(Store(db), "alice", password).account.role == "admin"
    listed = CliRunner().invoke(app, ["review", "reviewers", "--db", db])
    assert "alice\tadmin" in listed.output
