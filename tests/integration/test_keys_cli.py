"""`oee keys create|list|revoke` and the local admin key of `oee run`, on the real PostgreSQL:
a key is printed once, only its HMAC is stored, revocation is reported once."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.auth.keys import Scope, parse_key
from api.auth.store import find_key, list_keys, revoke_key
from oee.cli import main
from oee.keys import ADMIN_KEY_FILE, local_admin_key
from oee.settings import Settings
from tests.integration.auth_support import SECRET, with_auth


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    assert settings.database_url
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("DB_SCHEMA", settings.db_schema)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))  # the admin key's file: the test's own
    monkeypatch.setenv("AUTH_SECRET", SECRET.get_secret_value())
    return with_auth(settings, data_dir=tmp_path)


def test_create_prints_the_key_once_list_shows_no_secret_and_revoke_reports_once(
    cli_env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keys", "create", "--name", "bot-7", "--scope", "read"]) == 0
    printed = capsys.readouterr().out
    key = parse_key(printed.strip().splitlines()[-1])
    assert key is not None and "bot-7" in printed

    assert main(["keys", "list"]) == 0
    listed = capsys.readouterr().out
    assert key.key_id in listed and "bot-7" in listed and "read" in listed
    assert key.secret not in listed
    assert cli_env.database_url
    stored = find_key(cli_env.database_url, cli_env.db_schema, key.key_id)
    assert stored is not None and key.secret.encode() not in stored.secret_hash

    assert main(["keys", "revoke", key.key_id]) == 0
    assert main(["keys", "revoke", key.key_id]) == 1  # already revoked: said, not hidden
    assert "no live key" in capsys.readouterr().out


def test_the_local_admin_key_is_kept_and_remade_once_revoked(cli_env: Settings) -> None:
    assert cli_env.database_url
    dsn, schema = cli_env.database_url, cli_env.db_schema
    main(["keys", "list"])  # migrates the test's schema
    first = local_admin_key(cli_env, dsn)
    assert local_admin_key(cli_env, dsn) == first  # a second `oee run` prints the same key
    assert (cli_env.data_dir / ADMIN_KEY_FILE).read_text().strip() == first
    assert (cli_env.data_dir / ADMIN_KEY_FILE).stat().st_mode & 0o077 == 0
    presented = parse_key(first)
    assert presented is not None
    assert revoke_key(dsn, schema, presented.key_id)

    second = local_admin_key(cli_env, dsn)
    assert second != first
    scopes = {info.key_id: info.scope for info in list_keys(dsn, schema)}
    assert scopes[presented.key_id] is Scope.ADMIN and len(scopes) == 2
