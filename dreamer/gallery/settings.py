"""Gallery settings: one defaults dict, overridden from gallery.toml, validated once.

    settings = load("gallery.toml")              # or, in tests:
    settings = create_settings(size=64, styles=["vgg16-eyes"], style={"vgg16-eyes": {"steps": 2}})

Paths in the file are relative to the file's folder. Every problem is a one-line ConfigError
that names the file and the key.
"""

import copy
import re
from dataclasses import dataclass
from pathlib import Path

import tomllib

from dreamer.engine import objectives
from dreamer.engine.batching import check_batch
from dreamer.engine.precision import PRECISIONS
from dreamer.errors import DreamerError, InputError, StyleError, closest
from dreamer.files.safety import output_problem
from dreamer.media.images import noise_shape
from dreamer.media.video import VideoOptions
from dreamer.networks import get_style
from dreamer.options import MAX_SIZE, MIN_SIZE, GifOptions, RenderOptions, defaults, problem
from dreamer.style import STYLES, Style

DEFAULTS = {
    "title": "Dreamer gallery",
    "intro": "",
    "credits": "",
    "description": "",  # for search engines and link previews (default: the intro's first sentence)
    "site_url": "",  # where the site is published, e.g. https://you.github.io/dreamer/: link previews need it
    "inputs": "inputs",
    "static": [],  # rows dreamed from seeded static: "noise" (a size-square) or "noise:WxH"
    "output": "site",
    "templates": None,  # a folder of templates overriding the built-in ones, file by file
    "size": 384,  # long side of every GIF, still and photo in pixels
    "seed": 0,
    "cluster": "",  # render on Ray: auto, local, local:N, ray://HOST:PORT or HOST:PORT ("" renders here)
    "batch": "auto",  # tiles per network call and photos dreamed together (auto: from free accelerator memory)
    "precision": None,  # "auto", "float32" or "bfloat16" for every style whose table does not set one
    "styles": ["vgg16-eyes", "vgg16-deep", "hed-edges", "effnet-lite0-objects"],
    "style": {},  # name -> inline definition or changes to a zoo style
    "gif": defaults(GifOptions),  # each declared in dreamer.options
    "video": {
        "formats": ["webm", "mp4"],  # written beside every GIF, shown by the pages (the GIF without JavaScript)
        "small": 240,  # long side of a second, smaller rendition for the index grid on phones (0: none)
    },
    "clip": {  # videos and animated GIFs in the inputs: rows of dreamed clips (their long side: `size`)
        "seconds": "",  # the part of each clip to dream, A-B in seconds ("": all of it, up to 300 s)
        "fps": 0,  # resample each clip to this many frames a second (0: its own frames and times)
    },
}


# Where --cluster (or gallery.toml's cluster) renders.
CLUSTER_ADDRESS = re.compile(r"^(auto|local(:[1-9][0-9]*)?|ray://\S+|[\w.-]+:[0-9]+)$")
CLUSTER_FORMS = "use auto, local, local:N, ray://HOST:PORT or HOST:PORT"


class ConfigError(DreamerError):
    """A gallery.toml that cannot be used: the message names the file and the key."""


@dataclass(frozen=True)
class Settings:
    """Everything a build needs, checked: absolute paths, styles resolved to zoo Style objects."""

    title: str
    intro: str
    credits: str
    description: str
    site_url: str
    inputs: Path
    static: tuple[str, ...]
    output: Path
    templates: Path | None
    size: int
    seed: int
    batch: int | str
    cluster: str
    styles: tuple[Style, ...]
    gif: dict
    video: dict
    clip: dict
    source: str = "settings"  # what error messages name: the config file, or "settings"
    root: Path = Path(".")  # the folder of the config file (the project): paths in it are relative to it

    def render_options(self) -> dict:
        """The render parameters that shape the pictures (part of every render key)."""
        return {"size": self.size, "seed": self.seed, "gif": dict(self.gif), "video": dict(self.video)}

    def clip_options(self) -> dict:
        """What shapes a clip's frames besides render_options (part of a clip's render and photo keys)."""
        return {"seconds": self.clip["seconds"] or None, "fps": self.clip["fps"] or None}


def load(path) -> Settings:
    """Read and validate a gallery.toml; paths in it are relative to its folder."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found; create it or pass --config FILE") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return create_settings(root=path.resolve().parent, source=str(path), **data)


def create_settings(root=".", source: str = "settings", **overrides) -> Settings:
    """The defaults, overridden key by key (`gif`, `video` and `clip` merge), validated. Tests build settings with it."""
    data = copy.deepcopy(DEFAULTS)
    for key, value in overrides.items():
        if key not in DEFAULTS:
            hint = closest(key, DEFAULTS, "known keys: " + ", ".join(DEFAULTS))
            raise ConfigError(f"{source}: unknown key {key!r}{hint}")
        if key in ("gif", "video", "clip") and isinstance(value, dict):
            unknown = sorted(set(value) - set(DEFAULTS[key]))
            if unknown:
                hint = closest(unknown[0], DEFAULTS[key], "known: " + ", ".join(DEFAULTS[key]))
                raise ConfigError(f"{source}: unknown key '{key}.{unknown[0]}'{hint}")
            data[key].update(value)
        else:
            data[key] = value
    return _validated(data, Path(root).resolve(), source)


def _validated(data: dict, root: Path, source: str) -> Settings:
    def fail(key, line):
        raise ConfigError(f"{source}: {key}: {line}")

    def text(key):
        if not isinstance(data[key], str):
            fail(key, f"must be a string, got {data[key]!r}")
        return data[key]

    def declared_as(cls, key, name=None):
        """data[key] checked against its declaration in `cls` (dreamer.options)."""
        wrong = problem(cls, key, data[key])
        if wrong:
            fail(name or key, wrong)
        return data[key]

    def folder(key):
        value = data[key]
        if not isinstance(value, (str, Path)) or not str(value).strip():
            fail(key, f"must be a folder path, got {value!r}")
        path = (root / Path(value).expanduser()).resolve()
        if path.exists() and not path.is_dir():
            fail(key, f"{path} is a file, not a folder; name a folder")
        return path

    gif = data["gif"]
    if not isinstance(gif, dict):
        fail("gif", "must be a table of GIF options")
    for key, value in gif.items():
        wrong = problem(GifOptions, key, value)
        if wrong:
            fail(f"gif.{key}", wrong)

    video = _video(data["video"], fail)
    inputs, output = folder("inputs"), folder("output")
    templates = None if data["templates"] is None else folder("templates")
    clash = output_problem(output, {"the inputs folder": inputs, "the templates folder": templates,
                                      "the project folder": root, "the home folder": Path.home()})
    if clash:
        fail("output", clash)
    return Settings(
        title=text("title"), intro=text("intro"), credits=text("credits"), description=text("description"),
        site_url=_site_url(text("site_url"), fail),
        inputs=inputs, static=_static(data["static"], data["size"], fail), output=output, templates=templates,
        size=declared_as(RenderOptions, "size"),
        seed=declared_as(RenderOptions, "seed"),
        batch=_batch(data["batch"], fail),
        cluster=_cluster(text("cluster"), fail),
        styles=tuple(_rooted(style, root) for style in
                     _with_precision(_styles(data["styles"], data["style"], fail), data["precision"], data["style"],
                                     fail)),
        gif=dict(gif), video=video, clip=_clip(data["clip"], fail), source=source, root=root,
    )


def _video(video, fail) -> dict:
    """The [video] table checked: formats from dreamer.media.video.FORMATS, each once; small 0 or a size in pixels."""
    from dreamer.media.video import FORMATS

    if not isinstance(video, dict):
        fail("video", "must be a table of video options")
    formats = video["formats"]
    if not isinstance(formats, list) or len(set(formats)) != len(formats) or not set(formats) <= set(FORMATS):
        fail("video.formats", f"must be a list of {' and '.join(map(repr, FORMATS))} (or [] for GIFs only), "
                              f"got {formats!r}")
    small = video["small"]
    if small != 0 and (isinstance(small, bool) or not isinstance(small, int) or not MIN_SIZE <= small <= MAX_SIZE):
        fail("video.small", f"must be 0 (none) or an integer from {MIN_SIZE} to {MAX_SIZE}, got {small!r}")
    return {"formats": list(formats), "small": small}


def _clip(clip, fail) -> dict:
    """The [clip] table checked: seconds "" or A-B (as `dreamer render --seconds`), fps 0 or up to MAX_FPS."""
    from dreamer.media.clips import MAX_FPS, parse_seconds

    if not isinstance(clip, dict):
        fail("clip", "must be a table of clip options")
    seconds, fps = clip["seconds"], clip["fps"]
    try:
        part = list(parse_seconds(seconds)) if seconds else None
    except (ValueError, AttributeError) as exc:
        fail("clip.seconds", f"{seconds!r}: {exc if isinstance(exc, ValueError) else 'must be a string'}")
    if part and part[1] == float("inf"):
        part[1] = None  # the rest of the clip (TOML and JSON have no infinity)
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not (fps == 0 or 0 < fps <= MAX_FPS):
        fail("clip.fps", f"must be 0 (the clip's own frames) or a number of frames a second up to {MAX_FPS}, "
                         f"got {fps!r}")
    return {"seconds": part, "fps": fps}


def check_address(address: str) -> str:
    """`address` if it is one --cluster understands, else ConfigError naming the forms."""
    if not CLUSTER_ADDRESS.match(address):
        raise ConfigError(f"cluster {address!r}: {CLUSTER_FORMS}")
    return address


def _cluster(address: str, fail) -> str:
    if address and not CLUSTER_ADDRESS.match(address):
        fail("cluster", f"{address!r}: {CLUSTER_FORMS}")
    return address


def _site_url(url: str, fail) -> str:
    """The published address, ending in a slash, or "" when it is not set."""
    if url and not re.fullmatch(r"https?://[^\s/]+(/\S*)?", url):
        fail("site_url", f"must be an http(s) address such as https://you.github.io/dreamer/, got {url!r}")
    return url if not url or url.endswith("/") else url + "/"


def _batch(value, fail):
    try:
        return check_batch(value)
    except ValueError as exc:
        fail("batch", f"must be {exc}, got {value!r}")


def _with_precision(styles, precision, tables, fail) -> tuple[Style, ...]:
    """Apply the gallery-wide `precision` to the styles whose [style.NAME] table sets none."""
    if precision is None:
        return styles
    if precision not in PRECISIONS:
        fail("precision", f"must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return tuple(s if "precision" in tables.get(s.name, {}) else s.replace(precision=precision) for s in styles)


def _static(names, size, fail) -> tuple[str, ...]:
    """The `static` list: noise inputs, each `noise` or `noise:WxH`."""
    if not isinstance(names, list):
        fail("static", "must be a list such as [\"noise:384x384\"]")
    for name in names:
        try:
            if not isinstance(name, str) or noise_shape(name, size if isinstance(size, int) else 1) is None:
                fail("static", f"{name!r} is not `noise` or `noise:WxH`")
        except InputError as exc:
            fail("static", str(exc))
    if len(set(names)) != len(names):
        fail("static", "an entry is listed twice")
    return tuple(names)


def _styles(names, tables, fail) -> tuple[Style, ...]:
    """Resolve the `styles` list: zoo names, changed by or defined in the `style.NAME` tables."""
    if not isinstance(names, list) or not names:
        fail("styles", "must be a non-empty list of style names")
    if not isinstance(tables, dict):
        fail("style", "must be a table of [style.NAME] tables")
    styles = []
    for name in names:
        if isinstance(name, Style):  # create_settings(styles=[Style(...)]) in code and tests
            styles.append(name.validated())
            continue
        if not isinstance(name, str) or not name.strip():
            fail("styles", f"every entry must be a style name, got {name!r}")
        if name in [s.name for s in styles]:
            fail("styles", f"{name!r} is listed twice")
        table = tables.get(name)
        try:
            styles.append(_style(name, table) if table is not None else get_style(name))
            if styles[-1].objective:
                objectives.check(styles[-1].objective)  # its length and depth, before any network loads
        except StyleError as exc:
            fail("styles" if table is None else f"style.{name}", str(exc))
        except (TypeError, ValueError) as exc:
            fail(f"style.{name}", f"bad value ({exc})")
    for name in tables:
        if name not in names:
            fail(f"style.{name}", f"defined but not listed in styles; add {name!r} to styles or remove it")
    return tuple(styles)


def _rooted(style: Style, root: Path) -> Style:
    """The style with its style image's path relative to the settings file's folder made absolute."""
    if not style.style_image:
        return style
    return style.replace(style_image=str((root / Path(style.style_image).expanduser()).resolve()))


def _style(name: str, table) -> Style:
    """A style from its [style.NAME] table: `base` (or a zoo NAME) changed by the table's keys,
    or, with `network` and `layers`, a style of its own."""
    if not isinstance(table, dict):
        raise StyleError(f"must be a table of style parameters, got {table!r}")
    table = dict(table)
    base = table.pop("base", name if name in STYLES and "network" not in table else None)
    if "name" in table and table.pop("name") != name:
        raise StyleError("its name is the table's name; remove the `name` key")
    if base is None:
        return Style.from_dict({"name": name, **table})
    return get_style(base, **table, name=name)


def gallery_inputs(path="gallery.toml") -> Path:
    """The photos folder of the gallery.toml `path` (its `inputs`, default inputs/ beside it), read without
    validating the rest: `dreamer train`'s photos when it is given none."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        data = {}
    return path.parent / str(data.get("inputs", DEFAULTS["inputs"]))


def video_options(settings: Settings) -> VideoOptions:
    """The videos every render writes: the small rendition only where it is smaller than the gallery's size."""
    small = settings.video["small"]
    return VideoOptions(tuple(settings.video["formats"]), small if small < settings.size else 0)
