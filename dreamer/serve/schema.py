"""The API's JSON shapes, which /openapi.json publishes."""

from typing import Literal

from pydantic import BaseModel


class Problem(BaseModel):
    """Every refusal: one line saying what was wrong."""

    error: str


class StyleInfo(BaseModel):
    name: str
    network: str
    description: str
    octaves: int
    steps: int
    every: int
    total_steps: int


class DreamStatus(BaseModel):
    """A dream as it stands: `place` while queued (1: next), `step` of `total` while running, `error` when failed,
    the addresses of its GIF and still when done."""

    id: str
    style: str
    status: Literal["queued", "running", "done", "failed", "cancelled"]
    place: int | None = None
    step: int
    total: int
    frames: int
    key: str
    error: str | None = None
    gif: str | None = None
    still: str | None = None


class Created(BaseModel):
    """The dreams one request made: one a style, in the order asked."""

    dreams: list[DreamStatus]


PROBLEMS = {status: {"model": Problem, "description": what} for status, what in {
    400: "a foreign Host header", 401: "no token, or a wrong one", 404: "no such dream",
    413: "the body or the photo is too large", 422: "a field out of bounds, or a photo that cannot be used",
    429: "the queue is full (Retry-After says when to try again)"}.items()}
