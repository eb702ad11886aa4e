"""Loading a schema and every committed version of it from the schemas directory.

Layout: `<name>.avsc` is the current schema; `history/<name>.v<N>.avsc` holds every
version ever committed (the current one included, as the newest). A record's wire header
names its writer version, so old records are read with the schema they were written with.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from schemas.errors import SchemaHistoryError

Schema = dict[str, Any]

_VERSION_FILE = re.compile(r"^(?P<name>[a-z_]+)\.v(?P<version>[0-9]+)\.avsc$")
MAX_VERSION = 255  # the version is one byte of the wire header


@dataclass(frozen=True, slots=True)
class SchemaHistory:
    """Every version of one schema, as JSON; the newest is the current one."""

    name: str
    versions: Mapping[int, Schema]

    def __post_init__(self) -> None:
        if not self.versions:
            raise SchemaHistoryError(f"{self.name}: no schema versions")
        for version in self.versions:
            if not 1 <= version <= MAX_VERSION:
                raise SchemaHistoryError(f"{self.name}: version {version} not in 1..{MAX_VERSION}")

    @property
    def current_version(self) -> int:
        return max(self.versions)

    @property
    def current(self) -> Schema:
        return self.versions[self.current_version]


def default_directory() -> Path:
    """The schemas shipped with the package (this module's directory)."""
    return Path(__file__).resolve().parent


def load_history(name: str, directory: Path | None = None) -> SchemaHistory:
    """Read `<name>.avsc` and its history; the current file must be the newest version."""
    root = directory or default_directory()
    versions: dict[int, Schema] = {}
    for path in sorted((root / "history").glob(f"{name}.v*.avsc")):
        match = _VERSION_FILE.match(path.name)
        if match is None or match["name"] != name:
            raise SchemaHistoryError(f"unexpected file in schemas/history: {path.name}")
        versions[int(match["version"])] = _read(path)
    current = _read(root / f"{name}.avsc")
    if not versions or current != versions[max(versions)]:
        newest = max(versions, default=0)
        raise SchemaHistoryError(
            f"{name}.avsc differs from the newest version in history (v{newest}): "
            f"copy it to history/{name}.v{newest + 1}.avsc before releasing it"
        )
    return SchemaHistory(name=name, versions=MappingProxyType(versions))


def _read(path: Path) -> Schema:
    schema = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(schema, dict):
        raise SchemaHistoryError(f"{path.name}: expected a record schema")
    return schema
