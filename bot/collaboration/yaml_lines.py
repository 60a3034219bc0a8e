"""YAML read with the line of every key and list entry, keys written twice reported."""

from __future__ import annotations

from typing import Any

import yaml

from bot.collaboration.problems import EXAMPLE_FILE, KeyPath, Report
from bot.i18n import _


def _node_key(node: yaml.Node) -> str:
    if not isinstance(node, yaml.ScalarNode):
        return "?"
    if node.tag.endswith(":null"):
        return "null"
    if node.tag.endswith(":bool"):
        return "true" if node.value.lower() in ("yes", "true", "on", "y") else "false"
    return str(node.value)


def _walk(
    node: yaml.Node,
    path: KeyPath,
    lines: dict[KeyPath, int],
    report: Report,
    seen: set[int],
) -> None:
    """Record the line of every key and list entry, and report keys written twice."""
    # An aliased node is walked once: its other uses fall back to the nearest line.
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        merges: list[yaml.Node] = []
        for key_node, value_node in node.value:
            key = _node_key(key_node)
            line = key_node.start_mark.line + 1
            if key == "<<":
                merges.append(value_node)
                continue
            if key in first:
                report.add(
                    (*path, key),
                    _('key "{key}" appears twice in this mapping (first on line {first})').format(
                        key=key, first=first[key]
                    ),
                    _("YAML keeps only the last one; remove or rename one of them"),
                    line=line,
                )
            else:
                first[key] = line
            lines[(*path, key)] = line
            _walk(value_node, (*path, key), lines, report, seen)
        for merged in merges:
            # Keys merged in with `<<: *anchor` sit on the anchor's lines unless written here.
            sources = merged.value if isinstance(merged, yaml.SequenceNode) else [merged]
            for source in sources:
                extra: dict[KeyPath, int] = {}
                _walk(source, path, extra, Report(report.file), seen)
                for key_path, line in extra.items():
                    lines.setdefault(key_path, line)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            _walk(item, (*path, index), lines, report, seen)


def _syntax_error(exc: yaml.MarkedYAMLError, report: Report) -> None:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or ""
    if exc.context and exc.context_mark is not None and exc.context_mark is not mark:
        detail = _("{context} (from line {line}): {problem}").format(
            context=exc.context, line=exc.context_mark.line + 1, problem=problem
        )
    else:
        detail = ": ".join(part for part in (exc.context, problem) if part)
    report.add(
        (),
        _("YAML syntax error: {detail}").format(detail=detail),
        _("check the indentation, colons, brackets and quotes near column {column}").format(
            column=mark.column + 1 if mark is not None else 1
        ),
        line=mark.line + 1 if mark is not None else None,
    )


_FAST_LOADER: type[Any] | None = getattr(yaml, "CSafeLoader", None)


def parse_yaml(text: str, report: Report) -> tuple[Any, dict[KeyPath, int]] | None:
    """The document and the line of every key path, or None after reporting why not."""
    if _FAST_LOADER is not None:
        # libyaml is several times faster, but PyYAML's own messages name the offending
        # character: a document libyaml refuses is parsed again for the better message.
        scratch = Report(report.file)
        parsed = _parse_with(_FAST_LOADER, text, scratch)
        if parsed is not None or not any(problem.key == "" for problem in scratch.problems):
            report.problems.extend(scratch.problems)
            return parsed
    return _parse_with(yaml.SafeLoader, text, report)


def _parse_with(
    loader_class: type[Any], text: str, report: Report
) -> tuple[Any, dict[KeyPath, int]] | None:
    lines: dict[KeyPath, int] = {}
    loader: Any = None
    try:
        loader = loader_class(text)
        node = loader.get_single_node()
        if node is None:
            report.add(
                (),
                _("the file is empty"),
                _("start from {example}, which lists every key").format(example=EXAMPLE_FILE),
            )
            return None
        _walk(node, (), lines, report, set())
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        _syntax_error(exc, report)
        return None
    except yaml.reader.ReaderError as exc:
        report.add(
            (),
            _("character U+{code:04X} is not allowed in YAML").format(code=exc.character)
            if isinstance(exc.character, int)
            else _("a byte that is not text: {reason}").format(reason=exc.reason),
            _("remove it, or save the file as plain UTF-8 text"),
            line=text[: exc.position].count("\n") + 1,
        )
        return None
    except yaml.YAMLError as exc:
        report.add((), _("YAML syntax error: {detail}").format(detail=exc))
        return None
    except RecursionError:
        report.add(
            (),
            _("the document refers to itself (a recursive anchor) or is nested too deeply"),
            _("write the values out instead of using anchors and aliases"),
        )
        return None
    finally:
        if loader is not None:
            loader.dispose()
    return data, lines
