"""`oee keys create|list|revoke`, and the local admin key `oee run` prints.

Consumes the settings (the read model's DSN and schema, the server secret) and the command
line; produces keys in the `api_keys` table (`api.auth.store`). A new key is printed once
and never stored; `list` shows ids, names, scopes and dates, never a secret.

The local admin key lives in DATA_DIR/admin.key (mode 0600) so a second `oee run` prints the
same key; it is made anew when the file is missing or its key no longer works (revoked, or
hashed under another secret).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from api.auth.keys import Scope, matches, parse_key
from api.auth.secret import server_secret
from api.auth.store import create_key, find_key, list_keys, revoke_key
from infra.services import database_url
from oee.settings import Settings

ADMIN_KEY_FILE = "admin.key"
LOCAL_ADMIN_NAME = "local-admin"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="make a key and print it (once)")
    create.add_argument("--name", required=True, help="who or what uses it, e.g. bot-7")
    create.add_argument("--scope", choices=[scope.value for scope in Scope],
                        default=Scope.TRADE.value,
                        help="read: own orders; trade: + place and cancel; admin: everything")
    actions.add_parser("list", help="every key: id, name, scope, created, revoked")
    revoke = actions.add_parser("revoke", help="refuse a key from now on (within 1 s)")
    revoke.add_argument("key_id", help="the id `list` shows (the 16 hex after oee_)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    dsn, schema = database_url(settings), settings.db_schema
    if args.action == "create":
        key = create_key(dsn, schema, server_secret(settings), args.name, Scope(args.scope))
        print(f"key {key.key_id} ({args.scope}) for {args.name}; shown once, keep it secret:")
        print(key.text)
        return 0
    if args.action == "list":
        for info in list_keys(dsn, schema):
            revoked = f"revoked {info.revoked_at:%Y-%m-%d %H:%M:%S}" if info.revoked_at else "live"
            print(f"{info.key_id}  {info.scope.value:<5}  {info.created_at:%Y-%m-%d %H:%M:%S}  "
                  f"{revoked:<28}  {info.name}")
        return 0
    if revoke_key(dsn, schema, args.key_id):
        print(f"key {args.key_id} revoked")
        return 0
    print(f"oee: no live key {args.key_id}")
    return 1


def local_admin_key(settings: Settings, dsn: str) -> str:
    """The local admin key of DATA_DIR/admin.key, made (and written) if it does not work."""
    path = settings.data_dir / ADMIN_KEY_FILE
    secret = server_secret(settings)
    if path.exists():
        text = path.read_text().strip()
        presented = parse_key(text)
        stored = None if presented is None else find_key(dsn, settings.db_schema,
                                                         presented.key_id)
        if (presented is not None and stored is not None and not stored.revoked
                and stored.scope is Scope.ADMIN and matches(secret, presented, stored.secret_hash)):
            return text
    key = create_key(dsn, settings.db_schema, secret, LOCAL_ADMIN_NAME, Scope.ADMIN)
    _write_private(path, key.text)
    return key.text


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text + "\n")
