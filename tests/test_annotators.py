"""Annotator accounts: bcrypt salted hashes, sign-in checks, the CLI."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from vislink.errors import NotFound, VislinkError
from vislink.graph import annotators as acc
from vislink.store.models import Annotator


@pytest.fixture(autouse=True)
def fast_bcrypt(monkeypatch):
    monkeypatch.setattr(acc, "BCRYPT_ROUNDS", 4)  # real bcrypt, cheap cost factor


@pytest.fixture
def db_session(vislink_env):
    from vislink.store import session_scope

    with session_scope(vislink_env.database_url) as session:
        yield session


def test_password_is_stored_salted_and_verified(db_session):
    a = acc.create_annotator(db_session, "alice", "correct horse", display_name="Alice", email="a@example.org")
    b = acc.create_annotator(db_session, "bob", "correct horse")
    assert a.password_hash.startswith("$2b$04$") and "correct horse" not in a.password_hash
    assert a.password_hash != b.password_hash  # salted: same password, different hashes
    assert acc.verify_password(db_session, "alice", "correct horse").id == a.id
    assert acc.verify_password(db_session, "alice", "wrong horse!") is None
    assert acc.verify_password(db_session, "nobody", "correct horse") is None
    acc.set_active(db_session, "alice", False)
    assert acc.verify_password(db_session, "alice", "correct horse") is None
    acc.set_password(db_session, "bob", "another secret")
    assert acc.verify_password(db_session, "bob", "correct horse") is None
    assert acc.verify_password(db_session, "bob", "another secret").name == "bob"


def test_accounts_without_password_and_get_or_create(db_session):
    c = acc.get_or_create(db_session, "importer")
    assert c.password_hash is None and acc.get_or_create(db_session, "importer").id == c.id
    assert acc.verify_password(db_session, "importer", "") is None
    assert [a.name for a in acc.list_annotators(db_session)] == ["importer"]


def test_bad_names_passwords_and_duplicates_are_refused(db_session):
    acc.create_annotator(db_session, "alice")
    with pytest.raises(VislinkError, match="already exists"):
        acc.create_annotator(db_session, "alice")
    with pytest.raises(VislinkError, match="not valid"):
        acc.create_annotator(db_session, "al ice")
    with pytest.raises(VislinkError, match="too short"):
        acc.create_annotator(db_session, "carol", "short")
    with pytest.raises(VislinkError, match="72 bytes"):
        acc.create_annotator(db_session, "dave", "é" * 40)
    with pytest.raises(NotFound, match="no annotator 'erin'; annotators: alice"):
        acc.get_annotator(db_session, "erin")


def test_cli_add_and_list(vislink_env):
    from vislink.cli import app
    from vislink.store import session_scope

    runner = CliRunner()
    result = runner.invoke(app, ["annotator", "add", "alice", "--password", "--display-name", "Alice"],
                           input="s3cret-pass\ns3cret-pass\n")
    assert result.exit_code == 0, result.output
    assert "annotator alice created" in result.output and "s3cret-pass" not in result.output
    result = runner.invoke(app, ["annotator", "add", "bob"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["annotator", "list"])
    assert "alice" in result.output and "no password" in result.output and "2 annotators" in result.output
    result = runner.invoke(app, ["annotator", "add", "bob"])
    assert isinstance(result.exception, VislinkError) and "already exists" in str(result.exception)
    with session_scope(vislink_env.database_url) as session:
        assert acc.verify_password(session, "alice", "s3cret-pass").display_name == "Alice"
        assert session.query(Annotator).count() == 2
