"""The gallery's site at `/`, as `mkdocs serve` serves a site: rebuilt when gallery.toml, the inputs or the templates
change, the open pages reloading when a build finishes, a failed build's line shown on them.

A build is `dreamer build --config FILE --wait` in a child process: the same build as on the command line, its own
networks (the server's worker keeps its own), its memory given back when it ends, and the server answering while it
runs. The reload script is added to each HTML page as it is served; nothing in the site folder carries it."""

import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path

import anyio
from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from sse_starlette import EventSourceResponse
from starlette.exceptions import HTTPException
from starlette.staticfiles import StaticFiles
from watchfiles import DefaultFilter, awatch

from dreamer.gallery.settings import Settings
from dreamer.serve.dreams import Changes
from dreamer.serve.security import HEADERS

STATIC = Path(__file__).resolve().parent / "static"  # package data
SCRIPT = "/api/preview/reload.js"
# The site's pages style their placeholders with style attributes and play videos: the server's policy, plus that.
SITE_POLICY = dict(HEADERS)[b"content-security-policy"].decode() + "; media-src 'self'; style-src-attr 'unsafe-inline'"
# A build in the child shares the device with the server's worker: it takes memory as it needs it, not all at once.
CHILD_ENV = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false", "TF_FORCE_GPU_ALLOW_GROWTH": "true"}
STOP_SECONDS = 10  # a build interrupted when the server stops gets this long to save its manifest


def attach(app: FastAPI, gallery: Path | None, settings: Settings) -> None:
    """Serve `gallery`'s site (settings.output) at `/` with its preview API, or with no gallery send `/` to the
    studio. The site answers every path no route of `app` matches, so the API and the studio come first."""
    if gallery is None:
        app.add_api_route("/", lambda: RedirectResponse("/studio", status_code=303), include_in_schema=False)
        return
    preview = Preview(gallery, settings)
    app.include_router(_router(preview))
    app.router.default = Site(preview, directory=settings.output, html=True, check_dir=False)


class Preview:
    """The gallery's builds: how many have finished, whether one is running, the last one's error line."""

    def __init__(self, gallery: Path, settings: Settings):
        self.gallery, self.settings = gallery, settings
        self.builds, self.building, self.error = 0, False, None
        self.changes: Changes | None = None  # made when the server starts, on its event loop

    def state(self) -> dict:
        return {"builds": self.builds, "building": self.building, "error": self.error}

    async def run(self) -> None:
        """Build now, then again after each change (changes during a build make one more build after it)."""
        dirty = asyncio.Event()
        dirty.set()
        config = self.gallery.resolve()
        folders = [f for f in (self.settings.inputs, self.settings.templates) if f is not None and f.is_dir()]
        ignored = DefaultFilter()  # editors' swap and backup files, caches

        def wanted(change, path: str) -> bool:
            path = Path(path)
            return ignored(change, str(path)) and (path == config or any(path.is_relative_to(f) for f in folders))

        async def watch(paths, recursive: bool):
            async for _ in awatch(*paths, watch_filter=wanted, recursive=recursive):
                dirty.set()

        # The config's folder alone (editors replace a file by renaming over it); the inputs and templates whole.
        watchers = [asyncio.create_task(watch([config.parent], False))]
        if folders:
            watchers.append(asyncio.create_task(watch(folders, True)))
        try:
            while True:
                await dirty.wait()
                dirty.clear()
                await self._build()
        finally:
            for watcher in watchers:
                watcher.cancel()

    async def _build(self) -> None:
        """One `dreamer build` in a child process, its output passed on to the server's stderr."""
        self.building = True
        self.changes.bump()
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "dreamer", "build", "--config", str(self.gallery), "--wait",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, limit=2**20,
            env={**CHILD_ENV, **os.environ})
        lines = []
        try:
            async for raw in process.stdout:
                lines.append(raw.decode(errors="replace").rstrip())
                print(lines[-1], file=sys.stderr, flush=True)
            code = await process.wait()
        except asyncio.CancelledError:  # the server is stopping: the build stops after the render it is on
            await _stop(process)
            raise
        self.error = None if code == 0 else error_line(lines, code)
        self.builds += 1
        self.building = False
        self.changes.bump()


def error_line(lines: list[str], code: int) -> str:
    """A failed build's one line: its last `error:` line, else its last line."""
    errors = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
    said = errors or [line for line in lines if line.strip()]
    return said[-1].strip() if said else f"the build stopped (exit status {code})"


async def _stop(process) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGINT)
    try:
        await asyncio.wait_for(process.wait(), STOP_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()


def _router(preview: Preview) -> APIRouter:
    @contextlib.asynccontextmanager
    async def lifespan(app):
        preview.changes = Changes(asyncio.get_running_loop())
        task = asyncio.create_task(preview.run())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    router = APIRouter(include_in_schema=False, lifespan=lifespan)

    @router.get("/api/preview")
    def status():
        """How many builds have finished, whether one is running, the last one's error line (or null)."""
        return JSONResponse(preview.state())

    @router.get("/api/preview/events")
    def events():
        """The builds' state as Server-Sent Events: now, then at each change (the reload script listens)."""
        return EventSourceResponse(_stream(preview))

    @router.get(SCRIPT)
    def script():
        return FileResponse(STATIC / "reload.js", media_type="text/javascript")

    return router


async def _stream(preview: Preview):
    while True:
        version = preview.changes.version
        yield {"event": "build", "data": json.dumps(preview.state())}
        await preview.changes.after(version)


class Site(StaticFiles):
    """The site folder's files (Starlette's StaticFiles: inside the folder only, no link out, Range requests), never
    cached without asking; HTML pages with the reload script added, and missing ones answered by a page that
    reloads when a build finishes."""

    def __init__(self, preview: Preview, **options):
        super().__init__(**options)
        self.preview = preview

    async def check_config(self) -> None:
        """Nothing to check: before the first build there is no folder, and every page is missing."""

    async def get_response(self, path: str, scope) -> Response:
        try:
            response = await super().get_response(path, scope)
        except HTTPException as exc:  # a missing page gets a page that waits for the build; anything else one line
            if exc.status_code == 405:  # the API's handler would name the methods of its routes: none here
                return JSONResponse({"error": "the site is read only: GET or HEAD"}, 405, exc.headers)
            if exc.status_code != 404 or not scope["path"].endswith(("/", ".html")):
                raise
            response = await self._page(STATIC / "missing.html", 404)
        if isinstance(response, FileResponse) and str(response.path).endswith(".html"):
            response = await self._page(Path(response.path), response.status_code)
        response.headers["content-security-policy"] = SITE_POLICY
        response.headers.setdefault("cache-control", "no-cache")
        return response

    async def _page(self, path: Path, status_code: int) -> Response:
        """The page at `path` with the reload script before its `</body>`, never cached."""
        html = await anyio.Path(path).read_text(errors="replace")
        tag = f'<script src="{SCRIPT}" data-build="{self.preview.builds}" defer></script>\n'
        end = html.lower().rfind("</body>")
        html = html[:end] + tag + html[end:] if end >= 0 else html + tag
        return Response(html, status_code, {"cache-control": "no-store"}, media_type="text/html")
