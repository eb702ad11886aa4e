"""A process's start-up, run without the cyclic garbage collector.

Importing the engine and its libraries and building a process allocate a few hundred thousand
objects that live as long as the process: classes, functions, schemas, settings. Collections
during start-up walk them again and again and free next to nothing; in a worker that is a
tenth of its start (0.15 s on a quiet machine), and a restarted worker's start is most of its
takeover. `pause` turns collection off; `resume` moves everything allocated so far to the
permanent generation (`gc.freeze`: later full collections skip it too) and turns collection
back on. Reference counting frees acyclic garbage all along.
"""

from __future__ import annotations

import gc


def pause() -> None:
    gc.disable()


def resume() -> None:
    """Idempotent: only the first call after `pause` freezes."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()
