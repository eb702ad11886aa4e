"""Publishing a directory that several processes may build at once (a download, a copy).

Each process builds in a staging directory of its own, writes a completion marker into it last,
then renames it into place. The first complete copy published wins; a later one is dropped,
and a published copy is never deleted (another process may be loading from it). A target
without its marker is an interrupted earlier attempt: it is cleared and the rename retried.
"""

from __future__ import annotations

import shutil
from pathlib import Path


def publish(staging: Path, target: Path, marker: str) -> bool:
    """Move the complete `staging` to `target`; False when another copy was there first.

    Raises OSError when `target` can be neither taken nor cleared.
    """
    for _ in range(2):
        if (target / marker).exists():
            shutil.rmtree(staging, ignore_errors=True)
            return False
        try:
            staging.rename(target)
            return True
        except OSError:  # taken: by another's copy, or by an incomplete one to clear
            if not (target / marker).exists():
                shutil.rmtree(target, ignore_errors=True)
    raise OSError(f"could not move {staging} into {target}")
