"""What every endpoint does with a request before trusting it: read the body within a cap, then
decode it and check its shape.

Both endpoints (Slack's webhook and the Teams bot's) read their body through `read_capped_body`:
the declared Content-Length is checked first, and the body is streamed and abandoned as soon as
it passes the cap, so an oversized request costs at most the cap in memory, signed or not. For
Slack, only after the signature matches is the body decoded (`load_json`) and checked against a
`Shape`; the Teams SDK checks a bearer token, which does not sign the body (sdk_bot). A `Shape` is a
pydantic model of exactly the fields the bot reads, so a listener never meets a list where it
expects an object, a string where it expects a number, or a field that is missing.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.requests import ClientDisconnect
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, Response

_S = TypeVar("_S", bound="Shape")
MAX_PROBLEMS = 3
"""How many shape problems a refusal names (the rest are counted)."""


class BodyRefused(Exception):
    """A request body that is not read: too large, or the client went away while sending it."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason

    def response(self) -> Response:
        """The HTTP answer for the refusal (413 for a body over the cap)."""
        return JSONResponse({"error": self.reason}, status_code=self.status)


async def read_capped_body(request: HttpRequest, limit: int) -> bytes:
    """The request's body, or `BodyRefused` (413) as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length", "").strip()
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise BodyRefused(413, f"body larger than {limit} bytes")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise BodyRefused(413, f"body larger than {limit} bytes")
    except ClientDisconnect as gone:
        raise BodyRefused(400, "the client disconnected while sending the body") from gone
    return bytes(body)


class ShapeError(ValueError):
    """A signed request whose body is not what the platform sends; the message says where."""

    def response(self) -> Response:
        """The HTTP answer: 400 naming the problem."""
        return JSONResponse({"error": "malformed request", "detail": str(self)}, status_code=400)


def load_json(text: str | bytes, what: str = "body") -> Any:
    """Decoded JSON, or ShapeError: not UTF-8, not JSON, nested too deeply, or holding text
    that cannot be stored or sent on (an unpaired UTF-16 surrogate such as `\\ud800`)."""
    try:
        data = json.loads(text.decode() if isinstance(text, bytes) else text)
        # A lone surrogate decodes into a str that no database or HTTP client can encode.
        json.dumps(data, ensure_ascii=False).encode()
    except UnicodeError as problem:
        raise ShapeError(f"{what}: text that is not valid UTF-8 or Unicode") from problem
    except RecursionError as problem:
        raise ShapeError(f"{what}: JSON nested too deeply") from problem
    except ValueError as problem:
        raise ShapeError(f"{what}: not JSON ({problem})") from problem
    return data


class Shape(BaseModel):
    """Base of the webhook shapes: exact types (no coercion), unknown fields ignored, frozen."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    @classmethod
    def parse(cls: type[_S], data: Any, what: str = "body") -> _S:
        """`data` as this shape, or ShapeError naming the first fields that do not fit."""
        try:
            return cls.model_validate(data)
        except ValidationError as problem:
            errors = problem.errors(include_url=False, include_input=False)
            named = [
                f"{'.'.join([what, *(str(part) for part in error['loc'])])}: {error['msg']}"
                for error in errors[:MAX_PROBLEMS]
            ]
            more = len(errors) - len(named)
            if more:
                named.append(f"{more} more")
            raise ShapeError("; ".join(named)) from problem
