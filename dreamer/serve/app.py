"""The API: list styles, create dreams (202, an id a style), a dream's status, its frames as Server-Sent Events,
its GIF, still and videos, cancel, add its photo to the gallery. Every refusal is a 4xx of one line,
{"error": "..."}; the Guard wraps it all."""

import asyncio
import base64
import contextlib
import hashlib
import json
import re
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, File, Form, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from sse_starlette import EventSourceResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match

from dreamer.errors import DreamerError, closest, one_line
from dreamer.gallery.settings import Settings
from dreamer.media.images import resize_to_long_side
from dreamer.networks import get_style
from dreamer.serve import docs, preview, studio
from dreamer.serve.dreams import FINISHED, Changes, Dream, DreamQueue, dream_key, noise_sha256
from dreamer.serve.inputs import add_photo, suffix_of
from dreamer.serve.limits import Limits, Refused, noise_size, read_photo
from dreamer.serve.responses import OpenedFile
from dreamer.serve.schema import PROBLEMS, AddedToGallery, Created, DreamStatus, Problem, StyleInfo
from dreamer.serve.security import Guard
from dreamer.serve.store import Store
from dreamer.style import Style

MAX_STREAMED = 32  # dreams in one event stream (the studio's page: one stream for all its cards)
STREAMS = re.compile(r"^/api/(events|preview/events|dreams/[^/]+/events)$")  # event streams: the Guard checks Origin
DISCONNECTED_S = 2.0  # a dream whose streams all closed is cancelled after this, unless one opens again (a page
# that reopens its stream for new cards, a browser reconnecting)
VIDEOS = {"webm": "video/webm", "mp4": "video/mp4"}  # the videos served, of those the gallery's [video] settings make
DECODING = 2  # uploads decoded at once: a 50-megapixel photo takes 150 MB while it is
# What a client (and schemathesis) may do with the first dream a POST made.
LINKS = {operation: {"operationId": operation, "parameters": {"dream_id": "$response.body#/dreams/0/id"}}
         for operation in ("dream_status", "dream_events", "dream_gif", "dream_still", "dream_webm", "dream_mp4",
                           "cancel_dream", "add_to_gallery")}


def create_app(settings: Settings, styles: dict[str, Style], limits: Limits, store: Store, *, hosts: set[str],
               token: str | None, gallery: Path | None = None, interrupted=(), cluster=None):
    """The served ASGI app: the API, the studio and `gallery`'s site (dreamer.serve.preview) behind the Guard; the
    dreams dream here, or on `cluster`'s workers (dreamer.serve.remote), which it closes when it stops."""
    state, decoding = {}, asyncio.Semaphore(DECODING)

    @contextlib.asynccontextmanager
    async def lifespan(app):  # `store` is open (Store.open()); `interrupted`: what its journal had in flight
        state["queue"] = DreamQueue(settings, limits, store, Changes(asyncio.get_running_loop()), interrupted,
                                    cluster.workers(settings) if cluster else None)
        state["queue"].start()
        yield
        state["queue"].stop()
        if cluster:
            cluster.close()
        store.close()

    app = FastAPI(title="Dreamer", summary="Photos dreaming through neural networks, streamed frame by frame",
                  version="1", docs_url=None, redoc_url=None, lifespan=lifespan,
                  form_limits={"max_files": 1, "max_fields": 2 * len(styles) + 8})
    _handle_errors(app)
    app.include_router(studio.router)
    app.include_router(docs.router)
    preview.attach(app, gallery, settings)

    def queue() -> DreamQueue:
        return state["queue"]

    def find(dream_id: str) -> Dream:
        dream = queue().dreams.get(dream_id)
        if dream is None:
            raise HTTPException(404, "no such dream")
        return dream

    @app.get("/api/styles", operation_id="list_styles", response_model=list[StyleInfo], responses=PROBLEMS)
    def list_styles():
        """Every style the server dreams: the zoo's, trained networks', the gallery's."""
        return [StyleInfo(name=s.name, network=s.network, description=s.description, octaves=s.octaves,
                          steps=s.steps, every=s.every, total_steps=s.total_steps) for s in styles.values()]

    @app.post("/api/dreams", status_code=202, response_model=Created, operation_id="create_dreams",
              responses={202: {"description": "a dream a style", "links": LINKS}, **PROBLEMS})
    async def create_dreams(
            request: Request,
            styles_: Annotated[list[str], Form(alias="styles", min_length=1, max_length=len(styles),
                                               description="style names, one dream each",
                                               json_schema_extra={"items": {"enum": list(styles)}})],
            photo: Annotated[UploadFile, File(description="the photo (JPEG, PNG, GIF, WebP, TIFF, BMP)")] = None,
            noise: Annotated[str, Form(description="instead of a photo: static of WxH pixels, as 320x240",
                                       pattern=r"^\d{1,5}x\d{1,5}$")] = None,
            size: Annotated[int, Form(ge=limits.min_size, le=limits.max_size,
                                      description="the long side in pixels")] = None,
            steps: Annotated[int, Form(ge=1, le=limits.max_steps,
                                       description="steps per octave (the style's own if left out)")] = None,
            keep: Annotated[bool, Form(description="dream to the end even if every event stream on it closes (a "
                                                   "dream nobody streams always does)")] = False):
        """Dream a photo (or static) in each style asked: 202 with a dream a style, queued or already done."""
        chosen = _styles(styles_, styles, steps)
        if (photo is None) == (noise is None):
            raise Refused(422, "photo: send a photo file or noise=WxH (one of them)")
        size = size or min(settings.size, limits.max_size)
        if photo is not None:
            data = await photo.read()
            async with decoding:
                pixels = await run_in_threadpool(read_photo, data, limits)
                image = await run_in_threadpool(resize_to_long_side, pixels, size)
            sha, upload = hashlib.sha256(data).hexdigest(), {"upload": data, "suffix": suffix_of(data)}
        else:
            width, height = noise_size(noise, limits)
            image = f"noise:{width}x{height}"
            sha, upload = noise_sha256(image, settings.seed), {}
        client = request.client.host if request.client else "unknown"
        dreams = [queue().new(client, style, image, size, dream_key(sha, style, size, settings), keep=keep, **upload)
                  for style in chosen]
        await run_in_threadpool(queue().submit, dreams)
        return Created(dreams=[_status(queue(), dream) for dream in dreams])

    @app.get("/api/dreams/{dream_id}", operation_id="dream_status", response_model=DreamStatus, responses=PROBLEMS)
    def dream_status(dream_id: str):
        """A dream as it stands."""
        return _status(queue(), find(dream_id))

    @app.delete("/api/dreams/{dream_id}", operation_id="cancel_dream", response_model=DreamStatus, responses=PROBLEMS)
    def cancel_dream(dream_id: str):
        """Cancel a dream: a queued one at once, a running one between two steps; a finished one stays."""
        dream = find(dream_id)
        queue().cancel(dream)
        return _status(queue(), dream)

    foreign = {403: {"model": Problem, "description": "another site's page (its Origin header) asked for it"}}
    streamed = {"content": {"text/event-stream": {"schema": {"type": "string"}}},
                "description": "`frame` events (step, total, octave, the frame as a JPEG data URL) as the engine makes "
                               "them, `status` events as the dream changes; the stream ends when the dream does"}

    @app.get("/api/dreams/{dream_id}/events", operation_id="dream_events", response_class=EventSourceResponse,
             responses={200: streamed, **foreign, **PROBLEMS})
    def dream_events(dream_id: str):
        """A dream's frames and status as Server-Sent Events."""
        return EventSourceResponse(_stream(queue(), [find(dream_id)]))

    @app.get("/api/events", operation_id="events", response_class=EventSourceResponse,
             responses={200: streamed, **foreign, **PROBLEMS})
    def events(ids: Annotated[list[str], Query(alias="id", min_length=1, max_length=MAX_STREAMED)]):
        """Several dreams' events in one stream, each event naming its dream (a browser opens few streams to a
        server: the studio opens one a page)."""
        return EventSourceResponse(_stream(queue(), [find(dream_id) for dream_id in dict.fromkeys(ids)]))

    def finished_file(dream_id: str, role: str):
        """The finished dream's file in `role`, opened as its bytes are checked against the store's record: a damaged
        entry, or one evicted since the dream finished, is dropped (410), never served; once open, it is served
        whole even if it is evicted meanwhile."""
        dream = find(dream_id)
        if dream.status != "done":
            raise HTTPException(409, f"the dream is {dream.status}; its {role} comes when it is done")
        if role not in dream.entry.files:
            raise HTTPException(404, f"no {role}: the gallery's [video] formats leave it out")
        file = store.opened(dream.entry, role)
        if file is None:
            raise HTTPException(410, "the dream's files were damaged or removed from the server's cache; "
                                     "POST the photo again to dream it again")
        return file

    gif = {"content": {"image/gif": {}}, "description": "the dream's GIF"}
    still = {"content": {"image/jpeg": {}}, "description": "the finished dream as a JPEG"}
    conflict = {409: {"model": Problem, "description": "the dream is not done"},
                410: {"model": Problem, "description": "the dream's files were damaged or evicted: dream it again"}}

    @app.get("/api/dreams/{dream_id}/gif", operation_id="dream_gif", response_class=FileResponse,
             responses={200: gif, **PROBLEMS, **conflict})
    def dream_gif(dream_id: str):
        """The finished dream's GIF."""
        return OpenedFile(finished_file(dream_id, "gif"), "image/gif")

    @app.get("/api/dreams/{dream_id}/still", operation_id="dream_still", response_class=FileResponse,
             responses={200: still, **PROBLEMS, **conflict})
    def dream_still(dream_id: str):
        """The finished dream's last frame as a JPEG."""
        return OpenedFile(finished_file(dream_id, "still"), "image/jpeg")

    def video_route(kind: str, media_type: str):
        def video(dream_id: str):
            return OpenedFile(finished_file(dream_id, kind), media_type)
        return video

    for kind, media_type in VIDEOS.items():
        app.get(f"/api/dreams/{{dream_id}}/{kind}", operation_id=f"dream_{kind}", response_class=FileResponse,
                summary=f"The finished dream's {kind.upper()} (HTTP Range requests: a player seeks)",
                responses={200: {"content": {media_type: {}}, "description": f"the dream as {kind.upper()}"},
                           206: {"content": {media_type: {}}, "description": "the range asked"},
                           **PROBLEMS, **conflict})(video_route(kind, media_type))

    @app.post("/api/dreams/{dream_id}/gallery", status_code=201, operation_id="add_to_gallery",
              response_model=AddedToGallery, responses={**PROBLEMS, **conflict})
    def add_to_gallery(dream_id: str):
        """Copy the finished dream's photo, its bytes as sent, into the gallery's inputs folder under a new name
        (never over a file); the next build reuses this dream's files instead of dreaming again."""
        if settings.source == "settings":
            raise HTTPException(409, "this server has no gallery: start dreamer serve in a gallery's folder "
                                     "(or with --config gallery.toml)")
        dream = find(dream_id)
        if dream.status != "done":
            raise HTTPException(409, f"the dream is {dream.status}; its photo can be added once it is done")
        photo = next((role for role in dream.entry.files if role.startswith("photo.")), None)
        if photo is None:
            raise HTTPException(409, "a dream of static has no photo to add; list it under static in gallery.toml")
        with finished_file(dream_id, photo) as file:
            data = file.read()
        try:
            name, added = add_photo(settings.inputs, data, photo.split(".", 1)[1])
        except OSError as exc:
            raise HTTPException(409, f"inputs: cannot add the photo to {settings.inputs} "
                                     f"({exc.strerror or exc})") from None
        return AddedToGallery(input=name, added=added)

    return Guard(app, hosts=hosts, token=token, max_body=limits.max_upload, streams=STREAMS)


def _styles(names: list[str], styles: dict[str, Style], steps: int | None) -> list[Style]:
    """The styles named, each once, with `steps` if given; Refused (422) naming the first bad one."""
    if len(set(names)) != len(names):
        raise Refused(422, "styles: a style is named twice")
    for name in names:
        if name not in styles:
            raise Refused(422, f"styles: {name[:60]!r} is not a style"
                               f"{closest(name, styles, 'GET /api/styles lists them')}")
    try:
        return [get_style(styles[name], steps=steps) for name in names]
    except DreamerError as exc:
        raise Refused(422, f"steps: {one_line(exc)}") from None


def _status(queue: DreamQueue, dream: Dream) -> DreamStatus:
    with queue.lock:
        files = dream.entry.files if dream.status == "done" else {}
        links = {role: f"/api/dreams/{dream.id}/{role}" for role in ("gif", "still", *VIDEOS) if role in files}
        place = queue.place(dream)
        return DreamStatus(id=dream.id, style=dream.style.name, status=dream.status, place=place,
                           step=dream.step, total=dream.total, frames=len(dream.frames), key=dream.key,
                           error=dream.error, batch=dream.batch or None, estimate=_estimate(queue, dream, place),
                           **links)


def _estimate(queue: DreamQueue, dream: Dream, place: int | None) -> float | None:
    """About how many seconds until `dream` is done: the mean dream's time for each dream before it and its own, or
    what is left of its own while it runs; None once it has finished."""
    if dream.status == "queued" and place:
        return round(place * queue.seconds, 1)
    if dream.status == "running":
        return round(queue.seconds * (1 - dream.step / max(dream.total, 1)), 1)
    return None


async def _stream(queue: DreamQueue, dreams: list[Dream]):
    """`frame` and `status` events of `dreams` as they change, until all have finished. A dream's status is read
    before its frames, so a finished one has sent every frame before its last status. Closed before they finish,
    the dreams no other stream watches and nobody asked to keep are cancelled (after DISCONNECTED_S)."""
    sent, shown, ended = {d.id: 0 for d in dreams}, {}, False
    with queue.lock:
        for dream in dreams:
            dream.watchers += 1
    try:
        while True:
            version = queue.changes.version
            for dream in dreams:
                status = _status(queue, dream)
                with queue.lock:
                    frames = dream.frames[sent[dream.id]:]
                sent[dream.id] += len(frames)
                for step, data in frames:
                    yield {"event": "frame", "data": json.dumps(_frame(dream, step, data))}
                if status != shown.get(dream.id):
                    shown[dream.id] = status
                    yield {"event": "status", "data": status.model_dump_json()}
            if all(shown[d.id].status in FINISHED for d in dreams):
                ended = True
                return
            await queue.changes.after(version)
    finally:
        with queue.lock:
            for dream in dreams:
                dream.watchers -= 1
        if not ended:
            with contextlib.suppress(RuntimeError):  # the loop has closed: the server is stopping
                queue.changes.loop.call_later(DISCONNECTED_S, _unwatched, queue, dreams)


def _unwatched(queue: DreamQueue, dreams: list[Dream]) -> None:
    """Cancel those of `dreams` that no stream watches and nobody asked to keep."""
    for dream in dreams:
        if dream.watchers == 0 and not dream.keep and dream.status not in FINISHED:
            queue.cancel(dream)


def _frame(dream: Dream, step: int, data: bytes) -> dict:
    """A frame event's data: its step of the total, its octave ("step 40 of 120 · octave 3 of 4"), its JPEG."""
    style = dream.style
    return {"id": dream.id, "step": step, "total": dream.total, "octaves": style.octaves,
            "octave": 0 if step == 0 else min(style.octaves, (step - 1) // style.steps + 1),
            "image": "data:image/jpeg;base64," + base64.b64encode(data).decode()}


def _handle_errors(app: FastAPI) -> None:
    """Every refusal as {"error": one line}."""

    def problem(status: int, line: str, headers=None) -> JSONResponse:
        return JSONResponse({"error": " ".join(str(line).split())}, status, headers=headers)

    @app.exception_handler(Refused)
    async def refused(request, exc: Refused):
        return problem(exc.status, exc.line, {"Retry-After": str(exc.retry_after)} if exc.retry_after else None)

    @app.exception_handler(HTTPException)
    async def http_error(request, exc: HTTPException):
        if exc.status_code == 405:  # every method of the path, not just those of the first route that matched it
            methods = {method for route in app.router.routes if route.matches(request.scope)[0] != Match.NONE
                       for method in getattr(route, "methods", None) or ()}
            return problem(405, exc.detail, {"Allow": ", ".join(sorted(methods))})
        return problem(exc.status_code, exc.detail, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request, exc: RequestValidationError):
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"] if part not in ("body", "query", "path"))
        return problem(422, f"{field or 'request'}: {error['msg']}")
