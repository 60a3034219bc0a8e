"""The collaboration file: partners, boards, members and channels, checked with file, line and key.

`check_collaboration` reports every problem at once (YAML syntax, duplicate keys, shape, references,
schedules); `load_collaboration` returns the validated model or raises `ConfigError`;
`apply_collaboration` upserts the model into the database in the caller's transaction and writes
each real change to the audit log.

One module per step, each importing only the steps before it:
`problems` (ConfigProblem, ConfigError, the report that places a key on its line) ->
`schema` (field types and the models) -> `yaml_lines` (YAML with the line of every key) ->
`validation` (pydantic errors as problems) -> `checks` (checks across entries) ->
`load` (check and load) -> `apply` (to the database). This package only re-exports them.
"""

from bot.collaboration.apply import ENTITIES, ApplySummary, apply_collaboration
from bot.collaboration.load import check_collaboration, load_collaboration, load_glossary_file
from bot.collaboration.problems import EXAMPLE_FILE, ConfigError, ConfigProblem, KeyPath, dotted
from bot.collaboration.schema import (
    ALLOWED,
    GRAPH_COLUMNS,
    OPTIONAL,
    SECTIONS,
    TOP_LEVEL,
    BoardConfig,
    ChannelConfig,
    Collaboration,
    CollaborationInfo,
    DigestConfig,
    GlossaryEntryConfig,
    GraphConfig,
    MemberConfig,
    PartnerConfig,
    QuestionWindowConfig,
    SharePointConfig,
    SharePointListConfig,
    summarise,
)

__all__ = [
    "ALLOWED",
    "ENTITIES",
    "EXAMPLE_FILE",
    "GRAPH_COLUMNS",
    "OPTIONAL",
    "SECTIONS",
    "TOP_LEVEL",
    "ApplySummary",
    "BoardConfig",
    "ChannelConfig",
    "Collaboration",
    "CollaborationInfo",
    "ConfigError",
    "ConfigProblem",
    "DigestConfig",
    "GlossaryEntryConfig",
    "GraphConfig",
    "KeyPath",
    "MemberConfig",
    "PartnerConfig",
    "QuestionWindowConfig",
    "SharePointConfig",
    "SharePointListConfig",
    "apply_collaboration",
    "check_collaboration",
    "dotted",
    "load_collaboration",
    "load_glossary_file",
    "summarise",
]
