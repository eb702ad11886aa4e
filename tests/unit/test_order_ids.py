"""The aggregate's ids are uuid5 names in a fixed namespace: the fast path makes the same ones."""

from __future__ import annotations

from uuid import UUID, uuid5

from hypothesis import given
from hypothesis import strategies as st

from domain.orders import ids


@given(st.text(max_size=200))
def test_a_named_id_is_the_uuid5_of_its_name(name: str) -> None:
    assert ids.named_id(name) == str(uuid5(ids.NAMESPACE, name))


def test_the_ids_ever_written_stay_what_they_were() -> None:
    # Pinned values: a change to the namespace or the naming would re-id every stored event.
    assert ids.event_id("o-1", 1) == str(uuid5(UUID("f4805d40-1e51-416e-9ce3-c2f6c375ab49"),
                                               "o-1/1"))
    assert ids.stall_check_id("o-1", 3) == str(uuid5(ids.NAMESPACE, "o-1/stall-check/3"))
    assert ids.child_report_id("p", "c", 2) == str(uuid5(ids.NAMESPACE, "p/child/c/2"))
