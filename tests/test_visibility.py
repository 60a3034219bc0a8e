"""Property tests of the one visibility rule: nothing is shown above an audience's clearance."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given
from hypothesis import strategies as st

from bot.domain import Marking
from bot.visibility import UNKNOWN_READERS, Audience, can_see, partition, withheld_reason

PARTNERS = ["blaenau-gwent", "monmouthshire", "newport", "torfaen", "gwent-police", "srs"]


@dataclass
class Item:
    marking: Marking | str | None
    exempt_paragraph: int | None = None
    restricted_to: list[str] = field(default_factory=list)


markings = st.one_of(
    st.sampled_from(list(Marking)), st.sampled_from(["secret", "", "OFFICIAL"]), st.none()
)
paragraphs = st.one_of(st.none(), st.integers(min_value=0, max_value=30))
partner_sets = st.lists(st.sampled_from(PARTNERS), unique=True, max_size=4)
items = st.builds(Item, marking=markings, exempt_paragraph=paragraphs, restricted_to=partner_sets)
audiences = st.builds(
    Audience,
    clearance=st.sampled_from(list(Marking)),
    exempt_access=st.booleans(),
    readers=st.one_of(
        st.frozensets(st.sampled_from(PARTNERS), max_size=3),
        st.just(frozenset({UNKNOWN_READERS})),
    ),
)


@given(items, audiences)
def test_a_visible_item_is_within_every_dimension_of_clearance(
    item: Item, audience: Audience
) -> None:
    if can_see(item, audience):
        marking = Marking(item.marking)  # raises if an unknown marking were ever shown
        assert marking.rank <= audience.clearance.rank
        if item.exempt_paragraph is not None:
            assert audience.exempt_access
            assert 12 <= item.exempt_paragraph <= 18
        if item.restricted_to:
            assert audience.readers
            assert audience.readers <= set(item.restricted_to)


@given(items, audiences, audiences)
def test_adding_a_reader_never_widens_what_is_shown(
    item: Item, first: Audience, second: Audience
) -> None:
    together = first.together_with(second)
    if can_see(item, together):
        assert can_see(item, first)
        assert can_see(item, second)


@given(st.lists(items, max_size=30), audiences)
def test_partition_keeps_every_item_and_withholds_by_the_same_rule(
    batch: list[Item], audience: Audience
) -> None:
    result = partition(batch, audience)
    assert len(result.visible) + result.withheld_total == len(batch)
    assert all(can_see(i, audience) for i in result.visible)
    assert result.withheld_total == sum(1 for i in batch if not can_see(i, audience))


@given(items, audiences)
def test_withheld_reason_is_given_exactly_when_not_visible(item: Item, audience: Audience) -> None:
    assert (withheld_reason(item, audience) is None) == can_see(item, audience)


def test_default_deny_for_unknown_marking_and_unknown_readers() -> None:
    top = Audience(Marking.OFFICIAL_SENSITIVE, True, frozenset({"gwent-police"}))
    assert not can_see(Item("secret"), top)
    assert not can_see(Item(None), top)
    unknown = Audience(Marking.OFFICIAL_SENSITIVE, True, frozenset({UNKNOWN_READERS}))
    assert not can_see(Item(Marking.OFFICIAL, restricted_to=["gwent-police"]), unknown)
    assert can_see(Item(Marking.OFFICIAL, restricted_to=["gwent-police"]), top)


def test_police_only_item_is_hidden_from_a_channel_shared_with_councils() -> None:
    police = Audience(Marking.OFFICIAL_SENSITIVE, True, frozenset({"gwent-police"}))
    board_channel = Audience(Marking.OFFICIAL_SENSITIVE, True, frozenset(PARTNERS))
    item = Item(Marking.OFFICIAL, restricted_to=["gwent-police"])
    assert can_see(item, police)
    assert not can_see(item, police.together_with(board_channel))
