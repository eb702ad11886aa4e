"""Publishing a staged directory (infra.cache_dirs): the first complete copy wins, a later one
is dropped, a published copy is never replaced, an interrupted one is cleared."""

from __future__ import annotations

from pathlib import Path

from infra.cache_dirs import publish

MARKER = ".complete"


def staged(root: Path, name: str, content: str) -> Path:
    staging = root / name
    staging.mkdir()
    (staging / "payload").write_text(content)
    (staging / MARKER).write_text("done")
    return staging


def test_the_first_copy_is_published(tmp_path: Path) -> None:
    target = tmp_path / "cache"
    assert publish(staged(tmp_path, "a", "first"), target, MARKER)
    assert (target / "payload").read_text() == "first"
    assert not (tmp_path / "a").exists()


def test_a_later_copy_is_dropped_and_the_published_one_kept(tmp_path: Path) -> None:
    target = tmp_path / "cache"
    publish(staged(tmp_path, "a", "first"), target, MARKER)
    assert not publish(staged(tmp_path, "b", "second"), target, MARKER)
    assert (target / "payload").read_text() == "first"
    assert not (tmp_path / "b").exists()


def test_an_incomplete_target_is_cleared_and_replaced(tmp_path: Path) -> None:
    target = tmp_path / "cache"
    target.mkdir()
    (target / "payload").write_text("half")
    assert publish(staged(tmp_path, "a", "whole"), target, MARKER)
    assert (target / "payload").read_text() == "whole"
    assert (target / MARKER).exists()
