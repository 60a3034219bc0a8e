"""A seeded fuzzer for the webhooks: mutated requests built from real valid ones.

Each platform's test gives the fuzzer its valid requests (`Template`s: a body in one of the
encodings Slack or Teams use, carrying a unique marker) and its ways of signing and breaking a
signature. The fuzzer then draws `FuzzCase`s: valid requests, payloads mutated field by field
(lists for objects, nulls, wrong types, missing fields, huge strings, deep nesting), bodies that
are not JSON or not UTF-8, wrong content types, retries, bodies over the size cap, and requests
that are unsigned, forged, stale or carry a timestamp that is not a number. Every case knows
whether it carries a valid signature, so the test can check that no unsigned one was accepted.

The number of cases comes from `SCRUTINY_FUZZ_REQUESTS` (default 1,000 per endpoint; the
one-off run for the issue's figures uses 10,000) and the seed from `SCRUTINY_FUZZ_SEED`.
"""

from __future__ import annotations

import copy
import json
import os
import random
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from bot.models import Base

REQUESTS = int(os.environ.get("SCRUTINY_FUZZ_REQUESTS", "1000"))
SEED = int(os.environ.get("SCRUTINY_FUZZ_SEED", "20261201"))


@dataclass
class Template:
    """A valid request: its JSON (or form fields) and how it is encoded on the wire."""

    data: Any
    encoding: str
    """"json" (a JSON body), "form" (form fields) or "payload" (a form field holding JSON)."""

    def body(self, data: Any | None = None) -> bytes:
        """The encoded body of `data` (default: the template's own)."""
        value = self.data if data is None else data
        # JSON escapes every non-ASCII character, so a lone surrogate travels as `\ud800`.
        if self.encoding == "json":
            return json.dumps(value).encode()
        if self.encoding == "form":
            return urlencode(value, errors="surrogatepass").encode()
        return urlencode({"payload": json.dumps(value)}).encode()

    @property
    def content_type(self) -> str:
        """What the platform sends as Content-Type for this encoding."""
        return "application/json" if self.encoding == "json" else FORM


FORM = "application/x-www-form-urlencoded"


@dataclass
class FuzzCase:
    """One request to send, and what the fuzzer knows about it."""

    kind: str
    """What was done to it: "valid", "mutated", "junk body", "unsigned", "huge" ..."""
    marker: str
    """Unique text in the request; anything a handler does for it can be found by it."""
    body: bytes
    content_type: str | None
    signed: bool
    """Whether the request carries a valid signature."""
    headers: dict[str, bytes] = field(default_factory=dict)
    chunked: bool = False
    """Send the body in chunks without a Content-Length."""
    expect_ok: bool = False
    """A valid request the endpoint must answer with 2xx."""


@dataclass
class FuzzResult:
    """What came back for one case."""

    case: FuzzCase
    status: int


Signer = Callable[[bytes], dict[str, bytes]]
"""Headers that sign a body validly."""
Breaker = Callable[[random.Random, bytes], tuple[str, dict[str, bytes]]]
"""A name and headers that sign a body wrongly (or not at all)."""

_JUNK_VALUES: list[Any] = [
    None,
    [],
    ["x"],
    [None, 1],
    {},
    {"id": None},
    "",
    "x",
    "0",
    0,
    -1,
    1.5,
    2**70,
    -(2**70),
    True,
    False,
    "\u0000\u001b[2J",
    "😀",
    "\ud800",
    "<!channel>",
    "9" * 40,
]
_BODY_JUNK: list[bytes] = [
    b"",
    b"not json",
    b"{",
    b'{"type":',
    b"[]",
    b"null",
    b'"a string"',
    b"42",
    b"\xff\xfe\xfa",
    b"payload=",
    b"payload=%5B%5D",
    b"payload=null",
    b"payload=%22x%22",
    b"payload=%7B",
    b"payload=%FF%FE",
    b"payload=" + b"%5B" * 5000,
    b"[" * 50_000 + b"]" * 50_000,
    b'{"a":' * 20_000 + b"1" + b"}" * 20_000,
    b'{"type": "\\ud800"}',
    b"type=event_callback&event=%7B%7D",
    b"command=%2Fscrutiny",
    b"ssl_check=1",
    b"\x00" * 64,
]
_CONTENT_TYPES = [
    None,
    "text/plain",
    "application/xml",
    "multipart/form-data; boundary=x",
    "application/json; charset=utf-16",
    "APPLICATION/JSON",
    "application/x-www-form-urlencoded; charset=utf-8",
    "application/json",
    FORM,
]


MUTATION_DEPTH = 30
"""How deep into an earlier mutation's nesting a later one may reach."""


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if len(path) >= MUTATION_DEPTH:
        return
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*path, index))


def _deep(depth: int) -> Any:
    value: Any = "bottom"
    for level in range(depth):
        value = [value] if level % 2 else {"x": value}
    return value


def _junk(rng: random.Random) -> Any:
    # A copy: a later mutation must never change the list of junk itself.
    return copy.deepcopy(rng.choice(_JUNK_VALUES))


def mutate(rng: random.Random, data: Any) -> Any:
    """`data` with one to three random changes somewhere in its tree."""
    mutated = copy.deepcopy(data)
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        paths = list(_paths(mutated))
        path = rng.choice(paths)
        if not path:
            mutated = rng.choice([_junk(rng), [mutated], _deep(rng.randint(10, 400))])
            continue
        parent = mutated
        for part in path[:-1]:
            parent = parent[part]
        last = path[-1]
        operation = rng.random()
        if operation < 0.45:
            parent[last] = _junk(rng)
        elif operation < 0.6 and isinstance(parent, dict):
            del parent[last]
        elif operation < 0.7:
            parent[last] = [parent[last]]  # a list where an object (or a value) was
        elif operation < 0.8:
            parent[last] = "y" * rng.choice((1_000, 5_000, 100_000))
        elif operation < 0.88:
            parent[last] = _deep(rng.randint(5, 200))
        elif operation < 0.95 and isinstance(parent[last], str):
            # Keep the type, change the text: a real value with odd contents.
            parent[last] = rng.choice(
                [parent[last] + "\u202e\x0b", parent[last][::-1], "", parent[last] * 3, "²"]
            )
        elif isinstance(parent, dict):
            parent[rng.choice(("type", "user", "event", "channel", "actions", "view"))] = _junk(rng)
    return mutated


def _mutate_form(rng: random.Random, fields: dict[str, str]) -> dict[str, str]:
    mutated = dict(fields)
    key = rng.choice(list(mutated))
    operation = rng.random()
    if operation < 0.3:
        del mutated[key]
    elif operation < 0.6:
        mutated[key] = str(_junk(rng))
    elif operation < 0.75:
        mutated[key] = "z" * rng.choice((1_000, 50_000))
    elif operation < 0.9:
        mutated["payload"] = rng.choice(["[]", "null", '"x"', "{", json.dumps(fields)])
    else:
        mutated[key] = mutated[key] + "\x00\x1b[2J"
    return mutated


class Fuzzer:
    """Draws cases from a platform's valid requests, signer and signature breakers."""

    def __init__(
        self,
        templates: Callable[[str], list[Template]],
        sign: Signer,
        breakers: list[Breaker],
        *,
        cap: int,
        seed: int = SEED,
        retry_headers: Callable[[int], dict[str, bytes]] | None = None,
    ) -> None:
        self.templates = templates
        """Valid requests carrying the given marker."""
        self.sign = sign
        self.breakers = breakers
        self.cap = cap
        self.rng = random.Random(seed)
        self.retry_headers = retry_headers or (lambda _n: {})
        self._sent_valid: list[FuzzCase] = []

    def cases(self, count: int) -> Iterator[FuzzCase]:
        """`count` cases, the same for the same seed."""
        for index in range(count):
            yield self._case(f"fz{index:06d}q")

    def _signed(self, kind: str, marker: str, body: bytes, content_type: str | None) -> FuzzCase:
        return FuzzCase(kind, marker, body, content_type, True, self.sign(body))

    def _case(self, marker: str) -> FuzzCase:
        rng = self.rng
        template = rng.choice(self.templates(marker))
        roll = rng.random()
        if roll < 0.15:
            case = self._signed("valid", marker, template.body(), template.content_type)
            case.expect_ok = True
            self._sent_valid.append(case)
            return case
        if roll < 0.45:
            if template.encoding == "form":
                body = template.body(_mutate_form(rng, template.data))
            else:
                body = template.body(mutate(rng, template.data))
            return self._signed("mutated", marker, body, template.content_type)
        if roll < 0.55:
            return self._signed("junk body", marker, rng.choice(_BODY_JUNK), template.content_type)
        if roll < 0.6:
            content_type = rng.choice(_CONTENT_TYPES)
            return self._signed("content type", marker, template.body(), content_type)
        if roll < 0.65 and self._sent_valid:
            again = rng.choice(self._sent_valid)
            headers = {**self.sign(again.body), **self.retry_headers(rng.randint(1, 3))}
            return FuzzCase("retry", again.marker, again.body, again.content_type, True, headers)
        if roll < 0.67:
            body = template.body() + b" " * (self.cap + rng.randint(1, self.cap))
            signed = rng.random() < 0.5
            headers = self.sign(body) if signed else {}
            return FuzzCase(
                "huge",
                marker,
                body,
                template.content_type,
                signed,
                headers,
                chunked=rng.random() < 0.5,
            )
        # Signature attacks, on valid, mutated and junk bodies alike.
        source = rng.random()
        if source < 0.6:
            body = template.body()
        elif source < 0.9 and template.encoding != "form":
            body = template.body(mutate(rng, template.data))
        else:
            body = rng.choice(_BODY_JUNK) + marker.encode()
        name, headers = rng.choice(self.breakers)(rng, body)
        content_type = template.content_type if rng.random() < 0.9 else rng.choice(_CONTENT_TYPES)
        return FuzzCase(name, marker, body, content_type, False, headers)


def send(http: httpx.Client, url: str, case: FuzzCase) -> FuzzResult:
    """POST one case and note the status."""
    headers: dict[str, bytes] = dict(case.headers)
    if case.content_type is not None:
        headers["Content-Type"] = case.content_type.encode()
    content: bytes | Iterator[bytes] = case.body
    if case.chunked:
        body = case.body
        content = iter([body[i : i + 65_536] for i in range(0, len(body), 65_536)])
    response = http.post(url, content=content, headers=headers)
    return FuzzResult(case, response.status_code)


def run(http: httpx.Client, url: str, cases: Iterator[FuzzCase]) -> list[FuzzResult]:
    """Send every case, one after another."""
    return [send(http, url, case) for case in cases]


def summary(name: str, results: list[FuzzResult]) -> str:
    """Counts by status code, and by kind of case, on a few lines."""
    by_status = Counter(result.status for result in results)
    by_kind: dict[str, Counter[int]] = {}
    for result in results:
        by_kind.setdefault(result.case.kind, Counter())[result.status] += 1
    lines = [
        f"{name}: {len(results)} requests; by status "
        + ", ".join(f"{status}: {count}" for status, count in sorted(by_status.items()))
    ]
    for kind, statuses in sorted(by_kind.items()):
        shown = ", ".join(f"{status}: {count}" for status, count in sorted(statuses.items()))
        lines.append(f"  {kind:<22} {shown}")
    return "\n".join(lines)


def markers_in(text: str) -> set[str]:
    """Every fuzz marker in `text`."""
    return set(re.findall(r"fz\d{6}q", text))


def rows_as_text(engine: Engine) -> str:
    """Every row in the database, as text (to look for markers in)."""
    with Session(engine) as session:
        return "\n".join(
            str(tuple(row))
            for table in Base.metadata.sorted_tables
            for row in session.execute(select(table))
        )


def check_refused_or_answered(results: list[FuzzResult], refused: int) -> None:
    """What every webhook must show: no answer of 500 or above; every request without a valid
    signature refused (401, or 413 over the size cap) and counted in `refused` (the endpoint's
    own count); every valid request answered 200."""
    assert [(r.case.kind, r.status) for r in results if r.status >= 500] == []
    unsigned = [r for r in results if not r.case.signed]
    assert [(r.case.kind, r.status) for r in unsigned if r.status not in (401, 413)] == []
    assert all(r.status == 401 for r in unsigned if r.case.kind != "huge")
    assert all(r.status == 413 for r in results if r.case.kind == "huge")
    assert [(r.case.kind, r.status) for r in results if r.case.expect_ok and r.status != 200] == []
    assert refused == sum(1 for r in unsigned if r.case.kind != "huge")


def check_untraced(results: list[FuzzResult], recorded: str) -> set[str]:
    """Check that nothing `recorded` (calls made, rows written) names a marker only unsigned
    requests carried; return the markers of valid requests that it does name."""
    seen = markers_in(recorded)
    signed = {r.case.marker for r in results if r.case.signed}
    assert seen & ({r.case.marker for r in results if not r.case.signed} - signed) == set()
    return seen & {r.case.marker for r in results if r.case.expect_ok}
