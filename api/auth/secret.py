"""The server secret keys are hashed under: AUTH_SECRET, or a file generated in DATA_DIR.

Consumes the settings; produces the secret's bytes. Every API process and `oee keys` of one
deployment must read the same secret (a key hashed under another one never matches): set
AUTH_SECRET for a deployment; for local use the first reader generates
`DATA_DIR/auth_secret` (mode 0600) and every later one reads it.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from oee.settings import Settings

SECRET_FILE = "auth_secret"


def server_secret(settings: Settings) -> bytes:
    if settings.auth_secret is not None:
        return settings.auth_secret.get_secret_value().encode()
    return _local_secret(settings.data_dir / SECRET_FILE)


def _local_secret(path: Path) -> bytes:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written aside, then linked into place: a reader never sees a half-written file, and
        # of two processes starting at once the first link wins and both read its secret.
        staged = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
        try:
            os.link(staged, path)
        except FileExistsError:
            pass
        finally:
            staged.unlink()
    text = path.read_text().strip()
    if len(text) < 32:
        raise ValueError(f"{path} holds no usable secret: delete it to generate a new one")
    return text.encode()
