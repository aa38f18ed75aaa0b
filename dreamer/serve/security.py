"""The guard in front of every request (pure ASGI): the Host header against DNS rebinding, the Origin of event
streams, the token when the server has one, the body's size counted as it arrives, and the security headers on
every answer."""

import json
import re
import secrets
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.exceptions import HTTPException

COOKIE = "dreamer_token"
HEADERS = [
    (b"content-security-policy", b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                 b"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),  # a URL with ?token= never leaves in a Referer
]


class BodyTooLarge(HTTPException):
    """The body went past the limit while it was read (FastAPI passes HTTPExceptions from body parsing on)."""

    def __init__(self, limit: int):
        super().__init__(413, f"the request is over the {limit:,}-byte limit", {"Connection": "close"})


def _own_origin(origin: str, host: str) -> bool:
    """Whether an Origin header names this server's own pages: http or https (a TLS proxy in front of the server
    keeps the Host header) and the address of the Host header."""
    try:
        parts = urlsplit(origin.lower())
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and parts.netloc == host.lower() and not parts.path


def host_name(header: str) -> str:
    """The name in a Host header, without its port or IPv6 brackets."""
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class Guard:
    """Refuses a foreign Host (400), another site's page asking for an event stream (403: an Origin header that is
    not this server's own http(s)://host:port; none, as from curl, is fine) on the paths `streams` matches, a missing
    or wrong token (401; `?token=` on a GET sets the page's cookie and redirects to the same address without it) and
    a body over `max_body` bytes (413, from Content-Length at once, else as soon as the count passes it); adds
    HEADERS to every answer."""

    def __init__(self, app, *, hosts: set[str], token: str | None, max_body: int, streams: re.Pattern | None = None):
        self.app, self.hosts, self.token, self.max_body, self.streams = app, hosts, token, max_body, streams

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}

        async def send_secured(message):
            if message["type"] == "http.response.start":  # a header the app set itself stays (the site's policy)
                own = {name.lower() for name, _ in message.get("headers", [])}
                message = {**message, "headers": [*message.get("headers", []),
                                                  *((name, value) for name, value in HEADERS if name not in own)]}
            await send(message)

        if host_name(headers.get("host", "")).lower() not in self.hosts:
            return await reply(send_secured, 400, "the Host header names another server (or none)")
        origin = headers.get("origin")
        if (origin is not None and self.streams is not None and self.streams.match(scope["path"])
                and not _own_origin(origin, headers["host"])):
            return await reply(send_secured, 403, "an event stream is for this server's own pages: the Origin header "
                                                  "names another site")
        if self.token is not None:
            query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
            if scope["method"] == "GET" and "token" in query and self._valid(query["token"]):
                return await self._set_cookie(scope, query, send_secured)
            if not self._valid(_presented(headers)):
                return await reply(send_secured, 401, "a token is needed: open the address `dreamer serve` printed, "
                                                      "or send Authorization: Bearer TOKEN",
                                   [(b"www-authenticate", b"Bearer")])
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_body:
            return await reply(send_secured, 413, BodyTooLarge(self.max_body).detail, [(b"connection", b"close")])
        counted = 0

        async def receive_counted():
            nonlocal counted
            message = await receive()
            counted += len(message.get("body", b""))
            if counted > self.max_body:
                raise BodyTooLarge(self.max_body)
            return message

        started = False

        async def send_started(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send_secured(message)

        try:
            await self.app(scope, receive_counted, send_started)
        except BodyTooLarge as exc:  # raised where no handler turned it into an answer
            if started:
                raise
            await reply(send_secured, 413, exc.detail, [(b"connection", b"close")])

    def _valid(self, presented: str | None) -> bool:
        return presented is not None and secrets.compare_digest(presented.encode(), self.token.encode())

    async def _set_cookie(self, scope, query: dict, send):
        """Keep the token in an HttpOnly, SameSite=Strict cookie and send the page to its address without it."""
        rest = urlencode({k: v for k, v in query.items() if k != "token"})
        cookie = f"{COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/"
        location = scope.get("raw_path") or scope["path"].encode()  # as it came: no decoded line breaks
        await send({"type": "http.response.start", "status": 303,
                    "headers": [(b"location", location + (f"?{rest}".encode() if rest else b"")),
                                (b"set-cookie", cookie.encode()), (b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})


def _presented(headers: dict) -> str | None:
    """The token a request carries: `Authorization: Bearer TOKEN`, else the page's cookie."""
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    morsel = SimpleCookie(headers.get("cookie", "")).get(COOKIE)
    return morsel.value if morsel else None


async def reply(send, status: int, line: str, headers=()):
    """Answer with {"error": line} as JSON."""
    body = json.dumps({"error": line}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})
