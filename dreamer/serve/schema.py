"""The API's JSON shapes, which /openapi.json publishes."""

from typing import Literal

from pydantic import BaseModel, Field


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
    """A dream as it stands: `place` while queued (1: next), `step` of `total` while running, `error` when failed
    or interrupted (the server stopped during it), the addresses of its GIF, still and videos when done."""

    id: str
    style: str
    status: Literal["queued", "running", "done", "failed", "cancelled", "interrupted"]
    place: int | None = None
    step: int
    total: int
    frames: int
    key: str
    error: str | None = None
    gif: str | None = None
    still: str | None = None
    webm: str | None = None
    mp4: str | None = None
    batch: int | None = Field(None, description="once it runs: how many dreams ran together in its batch, it among "
                                                "them (dreams of one style and canvas are batched)")
    estimate: float | None = Field(None, description="while queued or running: about how many seconds until it is "
                                                     "done, from the server's recent dreams")


class AddedToGallery(BaseModel):
    """The dream's photo in the gallery's inputs folder: its name there, and whether this request put it there
    (false: it was there already). The next build reuses the dream's files."""

    input: str
    added: bool


class Created(BaseModel):
    """The dreams one request made: one a style, in the order asked."""

    dreams: list[DreamStatus]


PROBLEMS = {status: {"model": Problem, "description": what} for status, what in {
    400: "a foreign Host header", 401: "no token, or a wrong one", 404: "no such dream",
    413: "the body or the photo is too large", 422: "a field out of bounds, or a photo that cannot be used",
    429: "the queue is full (Retry-After says when to try again)"}.items()}
