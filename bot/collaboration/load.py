"""Reading the file: every problem at once (`check_collaboration`), or the model
(`load_collaboration`); the glossary file too."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bot.collaboration.checks import cross_check
from bot.collaboration.problems import (
    EXAMPLE_FILE,
    ConfigError,
    ConfigProblem,
    Report,
    did_you_mean,
    hints,
    key_text,
    quoted,
)
from bot.collaboration.schema import (
    ALLOWED,
    SECTIONS,
    TOP_LEVEL,
    Collaboration,
    CollaborationInfo,
    GlossaryEntryConfig,
    GraphConfig,
)
from bot.collaboration.validation import validate
from bot.collaboration.yaml_lines import parse_yaml
from bot.i18n import _
from bot.import_columns import IMPORT_COLUMNS


def _read(path: Path, report: Report) -> str | None:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        report.add(
            (),
            _("file not found"),
            _("check the path or SCRUTINY_CONFIG; {example} is a complete example").format(
                example=EXAMPLE_FILE
            ),
        )
        return None
    except OSError as exc:
        report.add((), _("cannot read the file: {reason}").format(reason=exc.strerror or exc))
        return None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        report.add(
            (),
            _("not UTF-8 text (byte {offset} of the file)").format(offset=exc.start + 1),
            _("save the file as UTF-8"),
            line=raw[: exc.start].count(b"\n") + 1,
        )
        return None


def _check(path: Path) -> tuple[Collaboration | None, list[ConfigProblem]]:
    report = Report(str(path))
    text = _read(path, report)
    parsed = parse_yaml(text, report) if text is not None else None
    if parsed is None:
        return None, report.sorted()
    data, lines = parsed
    report.lines = lines
    if not isinstance(data, dict):
        report.add(
            (),
            _("the top level must be a mapping, found {value}").format(value=quoted(data)),
            _("write the keys {keys}, each at the start of a line").format(
                keys=", ".join(TOP_LEVEL)
            ),
            line=1,
        )
        return None, report.sorted()

    for key in data:
        if key not in ALLOWED:
            report.add(
                (key_text(key),),
                _('unknown key "{key}"').format(key=key_text(key)),
                hints(
                    _("allowed keys here: {keys}").format(keys=", ".join(ALLOWED)),
                    did_you_mean(key, ALLOWED),
                ),
            )
    for key in TOP_LEVEL:
        if key not in data:
            report.add(
                (key,),
                _('missing required key "{key}"').format(key=key),
                _("{example} shows what goes there").format(example=EXAMPLE_FILE),
                line=1,
            )

    info = (
        validate(CollaborationInfo, data["collaboration"], ("collaboration",), report)
        if "collaboration" in data
        else None
    )
    sections: dict[str, list[Any]] = {}
    for section, model in SECTIONS.items():
        if section not in data:
            continue
        value = data[section]
        if not isinstance(value, list):
            report.add(
                (section,),
                _("expected a list, found {value}").format(value=quoted(value)),
                _('write one entry per line, each starting with "- slug: …"'),
            )
            continue
        sections[section] = [
            validate(model, entry, (section, index), report) for index, entry in enumerate(value)
        ]
    graph = (
        validate(GraphConfig, data["graph"], ("graph",), report)
        if data.get("graph") is not None
        else None
    )
    glossary = _glossary_section(data, report)
    imports = _imports_section(data, report)
    cross_check(data, report)

    if report.problems or info is None:
        return None, report.sorted()
    collaboration = Collaboration(
        collaboration=info, graph=graph, glossary=glossary or [], imports=imports, **sections
    )
    collaboration._file = str(path)
    collaboration._lines = lines
    return collaboration, []


def _imports_section(data: Mapping[str, Any], report: Report) -> dict[str, dict[str, str]]:
    """The `imports:` column maps: for each import kind, header text -> one of its columns."""
    value = data.get("imports")
    if value is None:
        return {}
    hint = _('e.g. imports: {{actions: {{"Action No": ref}}}}')
    if not isinstance(value, Mapping):
        report.add(
            ("imports",), _("expected a mapping, found {value}").format(value=quoted(value)), hint
        )
        return {}
    maps: dict[str, dict[str, str]] = {}
    for kind, headers in value.items():
        if kind not in IMPORT_COLUMNS:
            report.add(
                ("imports", str(kind)),
                _("unknown import kind {kind}").format(kind=quoted(kind)),
                _("use one of {kinds}").format(kinds=", ".join(IMPORT_COLUMNS)),
            )
            continue
        if not isinstance(headers, Mapping):
            report.add(
                ("imports", kind),
                _("expected a mapping, found {value}").format(value=quoted(headers)),
                hint,
            )
            continue
        columns = IMPORT_COLUMNS[kind]
        maps[kind] = {}
        for header, column in headers.items():
            if not isinstance(header, str) or not header.strip():
                report.add(("imports", kind), _("a column header must be text"), hint)
            elif column not in columns:
                report.add(
                    ("imports", kind, header),
                    _("unknown {kind} column {column}").format(kind=kind, column=quoted(column)),
                    _("use one of {columns}").format(columns=", ".join(columns)),
                )
            else:
                maps[kind][header] = str(column)
    return maps


def _glossary_section(data: Mapping[str, Any], report: Report) -> list[GlossaryEntryConfig] | None:
    """The `glossary:` list, each entry checked on its own line; None when there is none."""
    value = data.get("glossary")
    if value is None:
        return None
    if not isinstance(value, list):
        report.add(
            ("glossary",),
            _("expected a list, found {value}").format(value=quoted(value)),
            _(
                "write one entry per term, each with an en list and a cy list (see {example})"
            ).format(example=EXAMPLE_FILE),
        )
        return None
    entries = [
        validate(GlossaryEntryConfig, entry, ("glossary", index), report)
        for index, entry in enumerate(value)
    ]
    return [entry for entry in entries if entry is not None]


def load_glossary_file(path: Path) -> list[GlossaryEntryConfig]:
    """A file holding only a `glossary:` list (the shipped config/glossary.yaml); raises
    ConfigError with the line of every problem."""
    report = Report(str(path))
    text = _read(path, report)
    parsed = parse_yaml(text, report) if text is not None else None
    entries: list[GlossaryEntryConfig] | None = None
    if parsed is not None:
        data, report.lines = parsed
        if not isinstance(data, dict) or "glossary" not in data:
            report.add(
                (), _('the file must hold one key, "glossary", with a list of terms'), line=1
            )
        else:
            for key in data:
                if key != "glossary":
                    report.add(
                        (key_text(key),),
                        _('unknown key "{key}"').format(key=key_text(key)),
                        _("allowed keys here: {keys}").format(keys="glossary"),
                    )
            entries = _glossary_section(data, report)
    if report.problems:
        raise ConfigError(report.sorted())
    return entries or []


def check_collaboration(path: Path) -> list[ConfigProblem]:
    """Every problem in the collaboration file at `path`, in line order (empty when it is valid)."""
    return _check(path)[1]


def load_collaboration(path: Path) -> Collaboration:
    """The validated collaboration file; raises ConfigError listing every problem."""
    collaboration, problems = _check(path)
    if collaboration is None:
        raise ConfigError(problems)
    return collaboration
