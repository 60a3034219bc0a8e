"""The catalogue tooling: extraction finds every form of string, the template is stable, update
keeps translations, and the check names each missing, stale, fuzzy or mistranslated string."""

from __future__ import annotations

import shutil
from pathlib import Path

from babel.messages.pofile import read_po, write_po
from typer.testing import CliRunner

from bot import catalogue
from bot.cli import cli

PY_SOURCE = """\
from bot.i18n import N_


def handler(ctx, t, n):
    ctx.t._("Hello {name}")
    t.ngettext("%(num)d action", "%(num)d actions", n)
    return N_("Marked at import time")


class Thing:
    def say(self):
        return self._("Said by a method")
"""
JSON_TEMPLATE = '{"text": {{ _("From a Slack template")|json }}}\n'
TEXT_TEMPLATE = """\
{% if n %}
{{ ngettext("%(num)d day", "%(num)d days", n) }}
{% endif %}
"""


def _tree(root: Path) -> Path:
    """A small project: babel.cfg, Python and templates; returns its locale directory."""
    shutil.copy(catalogue.ROOT / catalogue.MAPPING_FILE, root / catalogue.MAPPING_FILE)
    (root / "bot").mkdir()
    (root / "bot" / "thing.py").write_text(PY_SOURCE)
    (root / "templates" / "demo").mkdir(parents=True)
    (root / "templates" / "demo" / "card.slack.json.j2").write_text(JSON_TEMPLATE)
    (root / "templates" / "demo" / "card.txt.j2").write_text(TEXT_TEMPLATE)
    return root / "locale"


def _translate(locale_dir: Path, translations: dict[str, str | tuple[str, ...]]) -> None:
    path = catalogue.catalogue_path("cy", locale_dir)
    with path.open("rb") as handle:
        po = read_po(handle, locale="cy")
    for msgid, text in translations.items():
        message = po.get(msgid)
        assert message is not None, msgid
        message.string = text
        message.flags.discard("fuzzy")
    with path.open("wb") as handle:
        write_po(handle, po)


WELSH = {
    "Hello {name}": "Helo {name}",
    "%(num)d action": (
        "dim camau gweithredu",
        "%(num)d cam gweithredu",
        "%(num)d gam gweithredu",
        "%(num)d cham gweithredu",
        "%(num)d cham gweithredu",
        "%(num)d cam gweithredu",
    ),
    "Marked at import time": "Wedi'i farcio wrth fewnforio",
    "Said by a method": "Wedi'i ddweud gan ddull",
    "From a Slack template": "O dempled Slack",
    "%(num)d day": (
        "%(num)d diwrnod",
        "%(num)d diwrnod",
        "%(num)d ddiwrnod",
        "%(num)d diwrnod",
        "%(num)d diwrnod",
        "%(num)d diwrnod",
    ),
}


def test_extraction_finds_method_calls_marked_strings_and_json_templates(tmp_path: Path) -> None:
    _tree(tmp_path)
    found = {m.id: m for m in catalogue.extract(tmp_path) if m.id}
    assert set(found) == {
        "Hello {name}",
        ("%(num)d action", "%(num)d actions"),
        "Marked at import time",
        "Said by a method",
        "From a Slack template",
        ("%(num)d day", "%(num)d days"),
    }
    assert found["From a Slack template"].locations == [("templates/demo/card.slack.json.j2", 1)]
    assert found["Hello {name}"].locations == [("bot/thing.py", 5)]


def test_the_template_changes_only_when_strings_do(tmp_path: Path) -> None:
    locale_dir = _tree(tmp_path)
    assert catalogue.write_template(catalogue.extract(tmp_path), locale_dir) is True
    first = (locale_dir / catalogue.TEMPLATE_FILE).read_text()
    (tmp_path / "bot" / "thing.py").write_text("\n\n" + PY_SOURCE)  # lines move, strings do not
    assert catalogue.write_template(catalogue.extract(tmp_path), locale_dir) is False
    assert (locale_dir / catalogue.TEMPLATE_FILE).read_text() == first
    assert "Generated-By" not in first and "POT-Creation-Date: 2026-01-01 00:00+0000" in first


def test_the_check_lists_each_problem_with_its_source_and_passes_when_all_is_translated(
    tmp_path: Path,
) -> None:
    locale_dir = _tree(tmp_path)
    assert next(p.what for p in catalogue.check(tmp_path, locale_dir)).startswith("missing")

    catalogue.write_template(catalogue.extract(tmp_path), locale_dir)
    summary = catalogue.update("cy", locale_dir)
    assert (summary.total, summary.added, summary.untranslated) == (6, 6, 6)
    po_text = catalogue.catalogue_path("cy", locale_dir).read_text()
    assert "nplurals=6; plural=(n==0 ? 0 : n==1 ? 1 : n==2 ? 2 : n==3 ? 3 : n==6 ? 4 : 5);" in (
        po_text
    )
    problems = catalogue.check(tmp_path, locale_dir)
    assert {str(p) for p in problems} >= {
        "bot/thing.py:5: untranslated in locale/cy/LC_MESSAGES/messages.po: 'Hello {name}'",
        "templates/demo/card.txt.j2:2: untranslated in locale/cy/LC_MESSAGES/messages.po: "
        "'%(num)d day | %(num)d days'",
    }
    assert len(problems) == 6

    _translate(locale_dir, WELSH)
    assert catalogue.check(tmp_path, locale_dir) == []

    # A new string in a template: the template is stale and the Welsh catalogue lacks it.
    new = tmp_path / "templates" / "demo" / "new.txt.j2"
    new.write_text('{{ _("A brand new line") }}\n')
    problems = catalogue.check(tmp_path, locale_dir)
    assert [(p.where, p.what.split(" (")[0], p.msgid) for p in problems] == [
        ("templates/demo/new.txt.j2:1", "not in locale/messages.pot", "A brand new line"),
        (
            "templates/demo/new.txt.j2:1",
            "missing from locale/cy/LC_MESSAGES/messages.po",
            "A brand new line",
        ),
    ]

    # Extract and update: only the new string is left to translate; the rest are kept.
    catalogue.write_template(catalogue.extract(tmp_path), locale_dir)
    summary = catalogue.update("cy", locale_dir)
    assert (summary.added, summary.untranslated) == (1, 1)
    assert [p.what for p in catalogue.check(tmp_path, locale_dir)] == [
        "untranslated in locale/cy/LC_MESSAGES/messages.po"
    ]
    _translate(locale_dir, {"A brand new line": "Llinell newydd sbon"})
    assert catalogue.check(tmp_path, locale_dir) == []


def test_reworded_strings_are_fuzzy_and_removed_ones_obsolete(tmp_path: Path) -> None:
    locale_dir = _tree(tmp_path)
    catalogue.write_template(catalogue.extract(tmp_path), locale_dir)
    catalogue.update("cy", locale_dir)
    _translate(locale_dir, WELSH)

    source = tmp_path / "bot" / "thing.py"
    source.write_text(source.read_text().replace("Said by a method", "Said by a method, twice"))
    problems = catalogue.check(tmp_path, locale_dir)
    assert ("bot/thing.py:12", "Said by a method, twice") in {(p.where, p.msgid) for p in problems}
    obsolete = [p for p in problems if p.what.startswith("obsolete")]
    assert [p.msgid for p in obsolete] == ["Said by a method"]
    assert obsolete[0].where.startswith("locale/cy/LC_MESSAGES/messages.po:")

    catalogue.write_template(catalogue.extract(tmp_path), locale_dir)
    summary = catalogue.update("cy", locale_dir)
    assert (summary.fuzzy, summary.dropped) == (1, 0)  # the old translation became the guess
    (problem,) = catalogue.check(tmp_path, locale_dir)
    assert problem.what.startswith("fuzzy in locale/cy/LC_MESSAGES/messages.po")
    assert problem.where == "bot/thing.py:12"


def test_translations_must_keep_their_placeholders(tmp_path: Path) -> None:
    locale_dir = _tree(tmp_path)
    catalogue.write_template(catalogue.extract(tmp_path), locale_dir)
    catalogue.update("cy", locale_dir)
    _translate(locale_dir, {**WELSH, "Hello {name}": "Helo {enw}"})
    day_forms = (
        "%(num)d diwrnod",
        "%(num)d diwrnod",
        "%(nifer)d ddiwrnod",
        *WELSH["%(num)d day"][3:],
    )
    _translate(locale_dir, {"%(num)d day": day_forms})
    problems = {p.msgid: p.what for p in catalogue.check(tmp_path, locale_dir)}
    assert problems == {
        "Hello {name}": "cy translation has placeholders the source lacks: {enw}",
        "%(num)d day | %(num)d days": (
            "cy translation (form 2) has placeholders the source lacks: nifer"
        ),
    }
    assert catalogue.placeholders("%(a)s {b} 100%% %") == ["a", "{b}", "%"]


def test_the_real_catalogues_match_the_code() -> None:
    problems = catalogue.check()
    assert problems == [], "\n".join(str(p) for p in problems)
    result = CliRunner().invoke(cli, ["i18n", "check"])
    assert result.exit_code == 0, result.output
