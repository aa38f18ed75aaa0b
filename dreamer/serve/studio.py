"""The studio: a page to pick a photo (or static), tick styles and watch a card a style stream its frames.
Its script and style sheet are files (the Content-Security-Policy allows no inline script)."""

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from starlette.exceptions import HTTPException

STATIC = Path(__file__).resolve().parent / "static"  # package data
FILES = {"studio.js": "text/javascript", "studio.css": "text/css"}

router = APIRouter(include_in_schema=False)


@router.get("/studio")
def page():
    return FileResponse(STATIC / "studio.html", media_type="text/html")


@router.get("/studio/{name}")
def static_file(name: str):
    """One of the page's FILES, by its name in that fixed set."""
    if name not in FILES:
        raise HTTPException(404, "no such file")
    return FileResponse(STATIC / name, media_type=FILES[name])
