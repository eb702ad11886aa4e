"""Named errors of the Avro codec.

`UndecodableRecord` means a record can never be read: the consumer sends it to the
dead-letter topic. `UnknownSchemaVersion` usually means a newer writer is deployed: the
consumer may rather stop until it is upgraded than dead-letter live orders.
`SchemaMismatch` and `SchemaHistoryError` mean the code and the .avsc files disagree:
the codec refuses to start.
"""

from __future__ import annotations

from collections.abc import Iterable


class CodecError(Exception):
    """Base class of every codec error."""


class UndecodableRecord(CodecError):
    """Bad magic byte, truncated or corrupt bytes, or values the domain rejects."""


class UnknownSchemaVersion(CodecError):
    """The header names a writer schema version this codec does not know."""

    def __init__(self, schema: str, version: int, known: Iterable[int]) -> None:
        self.schema = schema
        self.version = version
        self.known = tuple(sorted(known))
        listed = ", ".join(f"v{v}" for v in self.known)
        super().__init__(
            f"{schema}: unknown writer schema version v{version} (known: {listed}); "
            "was it written by a newer release? Add its .avsc to schemas/history."
        )


class UnknownSchemaId(CodecError):
    """The header names a registry schema id that is no version of this schema known here
    (a newer release's schema, another topic's schema, or no registry to ask)."""

    def __init__(self, schema: str, schema_id: int, reason: str) -> None:
        self.schema = schema
        self.schema_id = schema_id
        super().__init__(f"{schema}: schema id {schema_id}: {reason}")


class UnencodableMessage(CodecError):
    """A message whose values do not fit the schema (e.g. an amount beyond a long)."""


class SchemaMismatch(CodecError):
    """The Python message types and the .avsc contract disagree."""


class SchemaHistoryError(CodecError):
    """schemas/history does not hold the current schema as its newest version."""
