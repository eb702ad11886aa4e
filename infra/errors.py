"""Errors the launcher raises when the machine is missing something the user must fix.

The CLI turns a `PrerequisiteError` into one line on stderr and exit code 2, without a stack
trace: the message itself must say what is missing and what to do about it.
"""

from __future__ import annotations


class PrerequisiteError(Exception):
    """A tool, port or download the local services need is not available."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message
