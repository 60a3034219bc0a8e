"""The translation catalogues: extract strings from code and templates, update and check them.

`extract` reads every `_()`, `N_()` and `ngettext()` in `bot/**.py` and `handlers/**.py` and every
`{{ _() }}`/`{% trans %}` in `templates/**.j2`, as `babel.cfg` says. `write_template` writes
`locale/messages.pot` without line numbers or dates, so the file changes only when strings do.
`update` merges the template into each translated catalogue (`locale/cy/LC_MESSAGES/messages.po`),
keeping translations and marking Babel's guesses fuzzy. `check` lists, with the source file and
line, every string the code uses that a catalogue lacks, leaves untranslated or fuzzy, or
translates with different placeholders, every entry the code no longer uses, and a stale template.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po, write_po

from bot.i18n import LOCALE_DIR

__all__ = [
    "LOCALE_DIR",
    "MAPPING_FILE",
    "PLURAL_FORMS",
    "ROOT",
    "TEMPLATE_FILE",
    "TRANSLATED",
    "Problem",
    "UpdateSummary",
    "catalogue_path",
    "check",
    "extract",
    "placeholders",
    "read_mapping",
    "update",
    "write_template",
]

ROOT = Path(__file__).resolve().parent.parent
MAPPING_FILE = "babel.cfg"
TEMPLATE_FILE = "messages.pot"
KEYWORDS: dict[str, Any] = {"_": None, "N_": None, "ngettext": (1, 2)}
"""`t._`/`ctx.t._`/`self._` count as `_`: Babel matches the name just before the bracket."""
COMMENT_TAGS = ("Translators:",)
TRANSLATED = ("cy",)
"""Languages with a catalogue to keep complete; English is the source language."""
PLURAL_FORMS = {
    # CLDR's six Welsh categories: zero, one, two, few (3), many (6), other. Babel's built-in rule
    # merges zero into other (five forms), which would make "0" read like "11".
    "cy": (6, "(n==0 ? 0 : n==1 ? 1 : n==2 ? 2 : n==3 ? 3 : n==6 ? 4 : 5)"),
}
_FIXED_DATE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
"""Header dates never change, so a catalogue changes only when its strings do."""
_COUNT_NAMES = frozenset({"num", "count", "n"})
"""Placeholders a plural form may leave out ("dim camau" for zero needs no number)."""
_PLACEHOLDER = re.compile(r"%\((\w+)\)[-#0 +]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]|%%|%|\{(\w*)[^{}]*\}")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the catalogues, where it comes from and what to do."""

    where: str
    """`file:line` of the string in the code (or in the catalogue for entries the code lacks)."""
    what: str
    msgid: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}: {self.msgid!r}"


@dataclass(frozen=True)
class UpdateSummary:
    """What `update` did to one language's catalogue."""

    language: str
    path: Path
    total: int
    added: int
    fuzzy: int
    untranslated: int
    dropped: int


def _key(message: Message) -> tuple[str, str | None]:
    msgid = message.id if isinstance(message.id, str) else message.id[0]
    return msgid, message.context


def _msgid_text(message: Message) -> str:
    return message.id if isinstance(message.id, str) else " | ".join(message.id)


def _where(message: Message, root: Path | None = None) -> str:
    if not message.locations:
        return "?"
    filename, lineno = message.locations[0]
    if root is not None:
        filename = str(root / filename)
    return f"{filename}:{lineno}" if lineno else filename


def read_mapping(root: Path = ROOT) -> tuple[list[tuple[str, str]], dict[str, dict[str, Any]]]:
    """The extraction method map and options from `babel.cfg` (shared with `pybabel extract`)."""
    with (root / MAPPING_FILE).open(encoding="utf-8") as handle:
        method_map, options_map = parse_mapping_cfg(  # type: ignore[no-untyped-call]
            handle, str(root / MAPPING_FILE)
        )
    for pattern, method in method_map:
        if method == "jinja2":
            # A template Jinja cannot parse must fail the check, not silently yield no strings.
            options_map.setdefault(pattern, {}).setdefault("silent", "false")
    return method_map, options_map


def extract(root: Path = ROOT) -> Catalog:
    """Every translatable string under `root`, with source file and line of each use."""
    method_map, options_map = read_mapping(root)
    catalog = Catalog(
        project="scrutiny-bot",
        charset="utf-8",
        creation_date=_FIXED_DATE,
        revision_date=_FIXED_DATE,
        fuzzy=False,
    )
    found = extract_from_dir(
        str(root),
        method_map,
        options_map,
        keywords=KEYWORDS,
        comment_tags=COMMENT_TAGS,
        strip_comment_tags=True,
    )
    for filename, lineno, message, comments, context in found:
        if isinstance(message, tuple) and not message[0]:
            continue
        catalog.add(
            message,
            None,
            [(Path(filename).as_posix(), lineno)],
            auto_comments=comments,
            context=context,
        )
    return catalog


def _po_bytes(catalog: Catalog, *, ignore_obsolete: bool = True) -> bytes:
    buffer = io.BytesIO()
    write_po(
        buffer,
        catalog,
        width=100,
        sort_output=True,
        include_lineno=False,
        ignore_obsolete=ignore_obsolete,
    )
    # The Babel version is not a property of our strings; leave it out so upgrades cause no churn.
    return re.sub(rb'"Generated-By: [^"]*"\n', b"", buffer.getvalue())


def _write_if_changed(path: Path, content: bytes) -> bool:
    if path.exists() and path.read_bytes() == content:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return True


def write_template(catalog: Catalog, locale_dir: Path = LOCALE_DIR) -> bool:
    """Write `messages.pot`; True when its content changed."""
    catalog.header_comment = (
        "# Translatable strings of scrutiny-bot: regenerate with `scrutiny-bot i18n extract`.\n"
        "# Do not edit by hand; translate in locale/<language>/LC_MESSAGES/messages.po."
    )
    return _write_if_changed(locale_dir / TEMPLATE_FILE, _po_bytes(catalog))


def _read(path: Path, language: str | None = None) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle, locale=language, abort_invalid=True)


def catalogue_path(language: str, locale_dir: Path = LOCALE_DIR) -> Path:
    """Where a language's catalogue lives."""
    return locale_dir / language / "LC_MESSAGES" / "messages.po"


def _set_plural_forms(catalog: Catalog, language: str) -> None:
    if language in PLURAL_FORMS:
        number, expression = PLURAL_FORMS[language]
        catalog.mime_headers = [
            *[(k, v) for k, v in catalog.mime_headers if k.lower() != "plural-forms"],
            ("Plural-Forms", f"nplurals={number}; plural={expression};"),
        ]


def update(language: str, locale_dir: Path = LOCALE_DIR) -> UpdateSummary:
    """Merge `messages.pot` into a language's catalogue (created if missing).

    Existing translations are kept; a string Babel matched to a similar old one gets that
    translation marked fuzzy (the check treats it as untranslated); entries the code no longer
    uses are dropped.
    """
    template = _read(locale_dir / TEMPLATE_FILE)
    path = catalogue_path(language, locale_dir)
    if path.exists():
        catalog = _read(path, language)
    else:
        catalog = Catalog(
            locale=language,
            project="scrutiny-bot",
            creation_date=_FIXED_DATE,
            revision_date=_FIXED_DATE,
            fuzzy=False,
        )
    _set_plural_forms(catalog, language)
    before = {_key(m) for m in catalog if m.id}
    catalog.update(template, update_header_comment=False, update_creation_date=False)
    catalog.header_comment = (
        f"# {language} translations of scrutiny-bot. Update with `scrutiny-bot i18n extract`\n"
        "# then `scrutiny-bot i18n update`; `scrutiny-bot i18n check` lists what is left.\n"
        "# Terms: locale/GLOSSARY.md."
    )
    messages = [m for m in catalog if m.id]
    dropped = len(catalog.obsolete)
    _write_if_changed(path, _po_bytes(catalog))
    return UpdateSummary(
        language=language,
        path=path,
        total=len(messages),
        added=sum(1 for m in messages if _key(m) not in before),
        fuzzy=sum(1 for m in messages if m.fuzzy),
        untranslated=sum(1 for m in messages if not _translated(m)),
        dropped=dropped,
    )


def _strings(value: str | tuple[str, ...] | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _translated(message: Message) -> bool:
    strings = _strings(message.string)
    return bool(strings) and all(strings) and not message.fuzzy


def placeholders(text: str) -> list[str]:
    """The placeholders in a message: `%(name)s` as "name", `{ref}` as "{ref}", a lone `%`."""
    found = []
    for match in _PLACEHOLDER.finditer(text):
        token = match.group(0)
        if token == "%%":
            continue
        if match.group(1):
            found.append(match.group(1))
        elif token.startswith("{"):
            found.append("{" + (match.group(2) or "") + "}")
        else:
            found.append(token)
    return found


def _placeholder_problem(source: Message, translation: Message, language: str) -> str | None:
    brace = "python-brace-format" in source.flags
    percent = "python-format" in source.flags or any(
        filename.endswith(".j2") for filename, _ in source.locations
    )

    def relevant(text: str) -> set[str]:
        return {
            p
            for p in placeholders(text)
            if (p.startswith("{") and brace) or (p[0] != "{" and percent)
        }

    ids = _strings(source.id)
    allowed = set().union(*(relevant(s) for s in ids))
    plural = len(ids) > 1
    required = {p for p in allowed if not (plural and p.strip("{}") in _COUNT_NAMES)}
    for index, text in enumerate(_strings(translation.string)):
        have = relevant(text)
        form = f" (form {index})" if plural else ""
        if have - allowed:
            unknown = ", ".join(sorted(have - allowed))
            return f"{language} translation{form} has placeholders the source lacks: {unknown}"
        if required - have:
            missing = ", ".join(sorted(required - have))
            return f"{language} translation{form} leaves out the placeholders {missing}"
    return None


def check(
    root: Path = ROOT, locale_dir: Path = LOCALE_DIR, languages: Iterable[str] = TRANSLATED
) -> list[Problem]:
    """Everything that keeps the catalogues from matching the code; empty when all is well."""
    source = extract(root)
    wanted = {_key(m): m for m in source if m.id}
    problems: list[Problem] = []
    template_path = locale_dir / TEMPLATE_FILE
    template_name = _display(template_path, root)
    if not template_path.exists():
        problems.append(Problem(template_name, "missing; run `scrutiny-bot i18n extract`", ""))
    else:
        template = _read(template_path)
        in_template = {_key(m) for m in template if m.id}
        for key, message in wanted.items():
            if key not in in_template:
                problems.append(
                    Problem(
                        _where(message),
                        f"not in {template_name} (stale; run `scrutiny-bot i18n extract`)",
                        _msgid_text(message),
                    )
                )
        problems += _unused(
            template,
            wanted,
            template_name,
            "no longer in the code (stale; run `scrutiny-bot i18n extract`)",
        )
    for language in languages:
        problems += _check_language(language, wanted, locale_dir, root)
    return problems


def _unused(
    catalog: Catalog, wanted: dict[tuple[str, str | None], Message], name: str, what: str
) -> list[Problem]:
    """Entries of a catalogue that no string in the code matches."""
    return [
        Problem(f"{name}:{entry.lineno}", what, _msgid_text(entry))
        for entry in catalog
        if entry.id and _key(entry) not in wanted
    ]


def _display(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _check_language(
    language: str,
    wanted: dict[tuple[str, str | None], Message],
    locale_dir: Path,
    root: Path,
) -> list[Problem]:
    path = catalogue_path(language, locale_dir)
    name = _display(path, root)
    if not path.exists():
        return [Problem(name, "missing; run `scrutiny-bot i18n update`", "")]
    catalog = _read(path, language)
    problems: list[Problem] = []
    if language in PLURAL_FORMS:
        number, expression = PLURAL_FORMS[language]
        if catalog.num_plurals != number or catalog.plural_expr != expression:
            problems.append(
                Problem(
                    name,
                    f"Plural-Forms must be nplurals={number}; plural={expression}; "
                    "(run `scrutiny-bot i18n update`)",
                    catalog.plural_forms,
                )
            )
    for key, message in wanted.items():
        entry = catalog.get(*key)
        where = _where(message)
        text = _msgid_text(message)
        if entry is None:
            problems.append(
                Problem(where, f"missing from {name} (run `scrutiny-bot i18n update`)", text)
            )
        elif entry.fuzzy:
            problems.append(
                Problem(
                    where,
                    f"fuzzy in {name}: Babel guessed it from a similar string; check the "
                    "translation and remove the fuzzy flag",
                    text,
                )
            )
        elif message.pluralizable != entry.pluralizable:
            problems.append(Problem(where, f"plural in one of the code and {name} only", text))
        elif not _translated(entry):
            strings = _strings(entry.string)
            empty = [str(i) for i, s in enumerate(strings) if not s]
            what = (
                f"untranslated in {name}"
                if len(empty) == len(strings)
                else f"plural form(s) {', '.join(empty)} untranslated in {name}"
            )
            problems.append(Problem(where, what, text))
        else:
            mismatch = _placeholder_problem(message, entry, language)
            if mismatch:
                problems.append(Problem(where, mismatch, text))
    problems += _unused(
        catalog,
        wanted,
        name,
        "obsolete: the code no longer uses it (run `scrutiny-bot i18n update`)",
    )
    for entry in catalog.obsolete.values():
        problems.append(
            Problem(
                f"{name}:{entry.lineno}",
                "obsolete (#~) entry (run `scrutiny-bot i18n update` to drop it)",
                _msgid_text(entry),
            )
        )
    return problems
