"""Block Kit limits: whatever blocks and text go in, what comes out is something Slack accepts
(checked by the fake API's own validator), and nothing but whitespace is lost when it fits."""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.i18n import Translator
from bot.rendering.escapes import mrkdwn_escape
from bot.rendering.slack_blocks import (
    MESSAGE_MAX_BLOCKS,
    MORE_ACTION_ID,
    SECTION_TEXT_MAX,
    cut,
    fallback_text,
    fit_message,
    fit_view,
    join_bodies,
    slack_len,
    split_text,
    text_blocks,
)
from tests.fakes.slack_api import message_problems, view_problems

T = Translator("en")
ALPHABET = st.sampled_from([*"ab &<>;\n\t ąש🎉👩‍👧", "&amp;", "<!channel>", "\u202e"])
short_text = st.lists(ALPHABET, max_size=40).map("".join)
long_text = st.tuples(short_text, st.integers(0, 600)).map(lambda pair: pair[0] * pair[1])
any_text = st.one_of(short_text, long_text)


def _plain(text: str) -> dict[str, str]:
    return {"type": "plain_text", "text": text}


@st.composite
def blocks(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Any mix of the block types our templates use, with any lengths."""
    out: list[dict[str, Any]] = []
    for index in range(draw(st.integers(0, 70))):
        kind = draw(
            st.sampled_from(["section", "fields", "header", "actions", "context", "divider"])
        )
        block: dict[str, Any]
        if kind == "section":
            block = {"type": "section", "text": {"type": "mrkdwn", "text": draw(any_text)}}
            if draw(st.booleans()):
                block["accessory"] = {
                    "type": "button",
                    "action_id": "acc",
                    "text": _plain(draw(any_text)),
                    "value": draw(any_text),
                }
        elif kind == "fields":
            fields = draw(st.lists(any_text, min_size=1, max_size=15))
            block = {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]}
        elif kind == "header":
            block = {"type": "header", "text": _plain(draw(any_text))}
        elif kind == "actions":
            count = draw(st.integers(1, 30))
            block = {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": f"a{n}",
                        "text": _plain(draw(short_text) * draw(st.integers(1, 5))),
                        "value": draw(any_text),
                    }
                    for n in range(count)
                ],
            }
        elif kind == "context":
            texts = draw(st.lists(any_text, min_size=1, max_size=14))
            block = {"type": "context", "elements": [{"type": "mrkdwn", "text": t} for t in texts]}
        else:
            block = {"type": "divider"}
        if draw(st.booleans()):
            block["block_id"] = f"b{index}"
        out.append(block)
    return out


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


@settings(max_examples=40, deadline=None)
@given(blocks(), any_text, st.integers(0, 200))
def test_any_blocks_and_text_fit_every_limit(
    given_blocks: list[dict[str, Any]], text: str, start: int
) -> None:
    message = fit_message(given_blocks, text, T, start=start, more=lambda end: f'{{"o": {end}}}')
    assert message_problems(message) == []
    assert len(message["blocks"]) <= MESSAGE_MAX_BLOCKS


@settings(max_examples=25, deadline=None)
@given(blocks(), any_text)
def test_any_view_fits_every_limit(given_blocks: list[dict[str, Any]], title: str) -> None:
    view = {"type": "modal", "title": _plain(title or "x"), "blocks": given_blocks * 2}
    assert view_problems(fit_view(view, T)) == []
    home = fit_view({"type": "home", "blocks": given_blocks * 2}, T)
    assert view_problems(home) == []
    assert len(home["blocks"]) <= 100


@settings(max_examples=200, deadline=None)
@given(any_text)
def test_text_becomes_sections_losing_only_whitespace(text: str) -> None:
    sections = text_blocks(text)
    assert all(slack_len(s["text"]["text"]) <= SECTION_TEXT_MAX for s in sections)
    joined = "".join(s["text"]["text"] for s in sections)
    assert _squash(joined) == _squash(mrkdwn_escape(text))


@settings(max_examples=200, deadline=None)
@given(st.lists(any_text, max_size=8))
def test_sections_split_but_keep_all_text_when_under_the_block_limit(texts: list[str]) -> None:
    given_blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": t}} for t in texts]
    message = fit_message(given_blocks, "fallback", T)
    joined = "".join(b["text"]["text"] for b in message["blocks"])
    if not _squash("".join(texts)):
        assert joined == "fallback"  # blank blocks: the fallback text is shown instead
    elif sum(len(split_text(t, SECTION_TEXT_MAX)) for t in texts) <= MESSAGE_MAX_BLOCKS:
        assert _squash(joined) == _squash("".join(texts))


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 400))
def test_paging_through_a_long_reply_shows_every_block_once_in_order(count: int) -> None:
    given_blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"item {n}"}} for n in range(count)
    ]
    seen: list[str] = []
    start, pages = 0, 0
    while True:
        message = fit_message(
            given_blocks, "fallback", T, start=start, more=lambda end: json.dumps({"o": end})
        )
        assert message_problems(message) == []
        pages += 1
        seen += [b["text"]["text"] for b in message["blocks"] if b["type"] == "section"]
        more = [
            e
            for b in message["blocks"]
            if b["type"] == "actions"
            for e in b["elements"]
            if e["action_id"] == MORE_ACTION_ID
        ]
        if not more:
            break
        start = json.loads(more[0]["value"])["o"]
    assert seen == [f"item {n}" for n in range(count)] or (count == 0 and seen == ["fallback"])
    assert pages == 1 if count <= MESSAGE_MAX_BLOCKS else pages <= -(-count // 48)


def test_fallback_text_is_escaped_never_empty_and_at_most_40000() -> None:
    assert fallback_text("") == "…"
    assert fallback_text("a <!here> & b") == "a &lt;!here&gt; &amp; b"
    long = fallback_text("x" * 50_000)
    assert len(long) == 40_000 and long.endswith("…")


def test_emoji_count_twice_and_cuts_never_split_an_entity() -> None:
    assert slack_len("🎉") == 2 and slack_len("ש") == 1
    assert slack_len(cut("🎉" * 100, 75)) <= 75
    escaped = mrkdwn_escape("&" * 50)
    cut_short = cut(escaped, 24)
    assert not re.search(r"&[a-z]*…$", cut_short)
    for part in split_text(escaped * 100, 3000):
        assert not re.search(r"&[a-z]*$", part)
        assert not re.match(r"^[a-z]*;", part)


def test_long_line_is_split_on_line_boundaries_first() -> None:
    lines = [f"line {n} " + "y" * 90 for n in range(100)]
    parts = split_text("\n".join(lines), 3000)
    assert len(parts) == 4
    assert all(part.split("\n")[0].startswith("line ") for part in parts)


def test_long_button_value_is_dropped_not_truncated() -> None:
    button = {"type": "button", "action_id": "x", "text": _plain("Go"), "value": "v" * 2001}
    keep = {"type": "button", "action_id": "y", "text": _plain("Keep"), "value": "ok"}
    message = fit_message([{"type": "actions", "elements": [button, keep]}], "t", T)
    assert message["blocks"] == [{"type": "actions", "elements": [keep]}]


def test_bilingual_bodies_are_joined_welsh_first_with_a_divider() -> None:
    cy = [{"type": "section", "text": {"type": "mrkdwn", "text": "Bore da"}}]
    en = [{"type": "section", "text": {"type": "mrkdwn", "text": "Good morning"}}]
    assert join_bodies([cy, en]) == [cy[0], {"type": "divider"}, en[0]]
    assert join_bodies([cy, []]) == cy


def test_split_section_keeps_its_block_id_only_once() -> None:
    block = {"type": "section", "block_id": "b", "text": {"type": "mrkdwn", "text": "z\n" * 4000}}
    message = fit_message([block], "t", T)
    assert [b.get("block_id") for b in message["blocks"]] == ["b", None, None]
    assert message_problems(message) == []


def _select_view(count: int) -> dict[str, Any]:
    options = [
        {"text": _plain(f"Q-SB-{n:05d} question number {n} " + "x" * 60), "value": f"Q-SB-{n:05d}"}
        for n in range(count)
    ]
    element = {"type": "static_select", "action_id": "into", "options": options}
    block = {"type": "input", "block_id": "into", "label": _plain("Into"), "element": element}
    return {"type": "modal", "title": _plain("Merge"), "blocks": [block]}


def _offered(view: dict[str, Any]) -> list[str]:
    element = view["blocks"][0]["element"]
    groups = element.get("option_groups") or [element]
    return [o["value"] for group in groups for o in group["options"]]


def test_a_select_past_100_options_is_grouped_by_100_keeping_every_option_in_order() -> None:
    small, large = fit_view(_select_view(100), T), fit_view(_select_view(250), T)

    assert view_problems(small) == [] and view_problems(large) == []
    assert _offered(small) == [f"Q-SB-{n:05d}" for n in range(100)]
    assert "option_groups" not in small["blocks"][0]["element"]
    groups = large["blocks"][0]["element"]["option_groups"]
    assert [len(g["options"]) for g in groups] == [100, 100, 50]
    assert _offered(large) == [f"Q-SB-{n:05d}" for n in range(250)]
    assert groups[1]["label"]["text"].startswith("Q-SB-00100")
    assert "Q-SB-00199" in groups[1]["label"]["text"]


def test_a_select_keeps_at_most_100_groups_of_100() -> None:
    fitted = fit_view(_select_view(10_050), T)

    assert view_problems(fitted) == []
    assert _offered(fitted) == [f"Q-SB-{n:05d}" for n in range(10_000)]
