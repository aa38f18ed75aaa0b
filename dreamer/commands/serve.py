"""`dreamer serve`: the studio and the dream API on one address, 127.0.0.1 unless told otherwise; in a gallery's
folder also its site at `/`, rebuilt as you edit (dreamer.serve.preview). Any other address needs a token, made at
start and printed once inside the URL (as Jupyter does); the socket is bound (port 0: the system picks one) before the
URL is printed, so the URL is the one that serves."""

import os
import secrets
import socket
import sys
from pathlib import Path

from dreamer.commands.argtypes import batch
from dreamer.errors import DreamerError

LOCAL_NAMES = {"localhost", "127.0.0.1", "::1"}  # served without a token

HELP = "the studio and the dream API: watch photos dream, live"


def arguments(parser) -> None:
    from dreamer.serve.limits import Limits

    defaults = Limits()
    parser.add_argument("--host", default="127.0.0.1",
                        help="the address to listen on (127.0.0.1); any other needs the token it prints")
    parser.add_argument("--port", type=int, default=8000, help="the port (8000; 0: any free one, printed)")
    parser.add_argument("--config", type=Path, help="the gallery's settings (gallery.toml here, if there)")
    parser.add_argument("--no-token", action="store_true",
                        help="serve without a token: refused on any address but 127.0.0.1, localhost and ::1")
    parser.add_argument("--max-size", type=int, default=defaults.max_size, help="largest long side of a dream")
    parser.add_argument("--max-steps", type=int, default=defaults.max_steps, help="most steps per octave")
    parser.add_argument("--max-per-client", type=int, default=defaults.max_per_client,
                        help="dreams one client may have queued or running")
    parser.add_argument("--max-batch", type=batch, default=None,
                        help="dreams of one style and canvas dreamed as one batch: a number, or auto (the gallery's "
                             "batch setting, itself auto by default: 4 on a CPU, what memory holds on a GPU)")
    parser.add_argument("--max-wait-ms", type=int, default=defaults.max_wait_ms,
                        help=f"how long a batch that is not full waits for more dreams ({defaults.max_wait_ms})")
    parser.add_argument("--cluster", metavar="ADDRESS",
                        help="dream on a Ray cluster's workers, as a build does: auto, local, local:N, ray://HOST:PORT "
                             "or HOST:PORT (the cluster extra)")
    parser.add_argument("--cache", type=Path, metavar="DIR",
                        help="the folder of finished dreams, kept across restarts ($DREAMER_DREAMS, else dreams/ in "
                             "the Dreamer cache folder)")
    parser.add_argument("--cache-size", type=int, default=2048, metavar="MIB",
                        help="at most this many MiB of finished dreams (2048); the least recently used go first")


def run(args) -> int:
    """Check the address and the token, bind, print the URL, serve until interrupted."""
    try:
        import uvicorn

        from dreamer.serve.app import create_app
    except ImportError as exc:
        raise DreamerError(f"dreamer serve needs the serve extra ({exc.name} is missing): "
                           "pip install 'dreamer[serve]' (in a checkout: pip install -e '.[serve]')") from None
    from dreamer.engine.backends import activate
    from dreamer.options import MAX_SIZE, MIN_SIZE
    from dreamer.serve.limits import Limits

    token = _token(args.host, args.no_token)
    settings, gallery = _settings(args.config)
    limits = Limits(max_size=args.max_size, max_steps=args.max_steps, max_per_client=args.max_per_client,
                    max_batch=args.max_batch or settings.batch, max_wait_ms=args.max_wait_ms)
    for option, value, low, high in [("--port", args.port, 0, 65535), ("--max-size", args.max_size, MIN_SIZE, MAX_SIZE),
                                     ("--max-steps", args.max_steps, 1, 10_000),
                                     ("--max-per-client", args.max_per_client, 1, limits.max_queue),
                                     ("--max-wait-ms", args.max_wait_ms, 0, 10_000)]:
        if not low <= value <= high:
            raise DreamerError(f"{option} {value}: use {low} to {high}")
    if args.cache_size < 1:
        raise DreamerError(f"--cache-size {args.cache_size}: use 1 (MiB) or more")
    from dreamer.serve.store import ENV, Store, default_folder

    store = Store(args.cache or default_folder(), args.cache_size * 2**20)
    interrupted = store.open()
    os.environ[ENV] = str(store.folder)  # the gallery's builds (dreamer.serve.preview) reuse its dreams
    address = args.host.strip("[]")
    try:
        sock = socket.create_server((address, args.port), family=socket.AF_INET6 if ":" in address else socket.AF_INET)
    except OSError as exc:
        raise DreamerError(f"cannot listen on {args.host} port {args.port} ({exc.strerror or exc})") from None
    # no Nagle: an answer's headers and body leave at once (else a kept-alive connection waits 40 ms for each
    # answer, for the client's delayed ACK); the connections it accepts inherit it
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    cluster = _cluster(args.cluster)  # before Keras loads here: the server plans its keys as the workers render
    activate()
    app = create_app(settings, _styles(settings), limits, store, hosts=LOCAL_NAMES | {address.lower()}, token=token,
                     gallery=gallery, interrupted=interrupted, cluster=cluster)
    host = f"[{address}]" if ":" in address else address
    if gallery:
        print(f"the site of {gallery} at http://{host}:{sock.getsockname()[1]}/, rebuilt as you edit", file=sys.stderr)
    print(f"http://{host}:{sock.getsockname()[1]}/studio" + (f"?token={token}" if token else ""), flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, server_header=False,
                                  timeout_graceful_shutdown=2)).run(sockets=[sock])
    return 0


def _cluster(address: str | None):
    """The Ray cluster at `address` with its workers started (its notes on stderr), or None; ClusterError (one line)
    if it cannot be used."""
    if not address:
        return None
    from dreamer.serve.remote import ServeCluster

    cluster = ServeCluster(address)
    for note in cluster.notes:
        print(note, file=sys.stderr)
    print(f"dreaming on {len(cluster.actors)} worker(s) of the cluster {address}", file=sys.stderr)
    return cluster




def _token(host: str, no_token: bool) -> str | None:
    """A fresh token, or None on a local address; DreamerError for --no-token on any other."""
    local = host.strip("[]").lower() in LOCAL_NAMES
    if no_token and not local:
        raise DreamerError(f"--host {host} without a token would let anyone who reaches it dream on this machine; "
                           "drop --no-token (a token is printed in the URL) or serve on 127.0.0.1")
    return None if local or no_token else secrets.token_urlsafe(24)


def _settings(config: Path | None):
    """The gallery's settings (its size, seed, GIF options and styles) and its gallery.toml, or the defaults and None
    where there is none."""
    from dreamer.gallery.settings import create_settings, load

    path = config or Path("gallery.toml")
    if config is None and not path.exists():
        print("no gallery.toml here: serving with the default settings, and no site", file=sys.stderr)
        return create_settings(), None
    return load(path), path


def _styles(settings) -> dict:
    """Every style by name: the zoo's and trained networks', the gallery's own over them."""
    from dreamer.networks import all_styles

    return all_styles() | {style.name: style for style in settings.styles}
