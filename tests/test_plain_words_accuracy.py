"""The public set of plain-language questions (tests/data/plain_questions.yaml), in English and
Welsh as people type them, asked through the real dispatcher of the example collaboration,
loaded as `scrutiny-bot run` loads it. Prints the accuracy per language; fails below 95%
overall or 90% in either language."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.app import ScrutinyApp
from bot.bootstrap import prepare
from bot.domain import Platform
from bot.messages import Request
from bot.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = Path(__file__).parent / "data" / "plain_questions.yaml"
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
"""Monday 23 November 2026, 10:00 in London (GMT)."""
DEFAULT_MEMBER = {"en": "sian-hughes", "cy": "owain-roberts"}
REF = re.compile(r"\b(?:[A-Z]{1,4}-\d{4}-\d{1,4}|TP-\d{3})\b")


@dataclass
class Outcome:
    question: dict[str, Any]
    answer: str
    problems: list[str] = field(default_factory=list)


def load_questions() -> list[dict[str, Any]]:
    data = yaml.safe_load(QUESTIONS.read_text(encoding="utf-8"))
    return list(data["questions"])


@pytest.fixture
def example_app(database_url: str) -> ScrutinyApp:
    """The example collaboration and its records, as `scrutiny-bot run` prepares them."""
    settings = load_settings(
        database_url=database_url,
        scrutiny_config=ROOT / "config" / "collaboration.example.yaml",
        slack_bot_token=None,
        slack_signing_secret=None,
        slack_app_token=None,
    )
    return prepare(settings, say=lambda _line: None)


def ask(app: ScrutinyApp, question: dict[str, Any]) -> Outcome:
    member = question.get("member") or DEFAULT_MEMBER[question["lang"]]
    request = Request(platform=Platform.CONSOLE, user_id=member, text=question["q"], now=NOW)
    answer = app.dispatch(request).text
    outcome = Outcome(question, answer)
    shown = set(REF.findall(answer))
    checks = (
        ("must", lambda ref: ref in shown, "missing {}"),
        ("not", lambda ref: ref not in shown, "should not show {}"),
        ("contains", lambda words: words in answer, "missing “{}”"),
        ("lacks", lambda words: words not in answer, "should not say “{}”"),
    )
    for key, holds, problem in checks:
        outcome.problems += [problem.format(v) for v in question.get(key) or [] if not holds(v)]
    return outcome


def test_the_public_set_is_large_and_half_welsh() -> None:
    questions = load_questions()
    welsh = [q for q in questions if q["lang"] == "cy"]
    assert len(questions) >= 150
    assert 0.45 <= len(welsh) / len(questions) <= 0.55
    assert all(q.get("must") or q.get("not") or q.get("contains") for q in questions)
    asked = {(q["q"], q.get("member")) for q in questions}
    assert len(asked) == len(questions), "a question is listed twice for the same member"


def test_plain_questions_are_answered_right(
    example_app: ScrutinyApp, capsys: pytest.CaptureFixture[str]
) -> None:
    outcomes = [ask(example_app, q) for q in load_questions()]
    rates: dict[str, float] = {}
    lines = []
    for language in ("en", "cy", "all"):
        chosen = [o for o in outcomes if language in ("all", o.question["lang"])]
        right = sum(1 for o in chosen if not o.problems)
        rates[language] = right / len(chosen)
        lines.append(f"{language}: {right}/{len(chosen)} right ({rates[language]:.1%})")
    wrong = [o for o in outcomes if o.problems]
    with capsys.disabled():
        print("\nplain-words accuracy: " + "; ".join(lines))
        for o in wrong:
            print(f"  FAIL [{o.question['lang']}] {o.question['q']!r}: {', '.join(o.problems)}")
    assert rates["all"] >= 0.95, "\n".join(lines)
    assert rates["en"] >= 0.90 and rates["cy"] >= 0.90, "\n".join(lines)
