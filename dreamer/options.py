"""Each option of a render declared once: a dataclass field made by option() holds its default, its bounds and its
help. Style (dreamer.style), GifOptions and RenderOptions declare theirs here; the CLI's flags (add_flags), gallery
.toml's checks (problem) and defaults (defaults) read those same fields.

    @dataclass(frozen=True)
    class GifOptions:
        frame_ms: int = option(120, "duration of each frame", low=10, high=60_000, unit="milliseconds")
"""

import argparse
import dataclasses
from dataclasses import dataclass, field

from dreamer.media.video import VideoOptions

MIN_SIZE, MAX_SIZE = 32, 4096  # a render's long side in pixels
MAX_SEED = 2**32 - 1  # numpy's seeds
PALETTES = ("auto", "per-frame", "shared")  # dreamer.media.gif says what "auto" picks


def option(default, help: str, *, low=None, high=None, above=None, choices=None, unit: str = "", off=None,
           flag: str = "", metavar: str = "", kind=None):
    """A dataclass field declaring an option: its default, its bounds (`low` to `high`, or over `above`; or one of
    `choices`; `off` a value also allowed, such as 0 for none), its help, and its CLI `flag` where that is not the
    field's name. An option whose default is None (left to a rule) names its `kind`, int or float."""
    return field(default=default, metadata={
        "help": help, "low": low, "high": high, "above": above, "choices": choices, "unit": unit, "off": off,
        "flag": flag, "metavar": metavar, "kind": kind or type(default)})


def declared(cls) -> dict[str, dataclasses.Field]:
    """The fields of `cls` declared with option(), by name."""
    return {f.name: f for f in dataclasses.fields(cls) if "help" in f.metadata}


def defaults(cls) -> dict:
    """Every declared option of `cls` with its default."""
    return {name: f.default for name, f in declared(cls).items()}


def problem(cls, name: str, value) -> str | None:
    """What is wrong with `value` for the option `name` of `cls`, as "must be ..., got ...", or None if nothing."""
    meta, default = declared(cls)[name].metadata, declared(cls)[name].default
    if meta["off"] is not None and value == meta["off"] and type(value) is type(meta["off"]):
        return None
    if default is None and value is None:
        return None
    kind = meta["kind"]
    if kind is bool:
        ok, wanted = isinstance(value, bool), "true or false"
    elif meta["choices"]:
        ok, wanted = value in meta["choices"], "one of " + ", ".join(map(str, meta["choices"]))
    elif kind is str:
        ok, wanted = isinstance(value, str), "a string"
    else:
        number = (int,) if kind is int else (int, float)
        ok = isinstance(value, number) and not isinstance(value, bool) and _within(value, meta)
        noun = "an integer" if number == (int,) else "a number"
        wanted = _range(meta, f"a whole number of {meta['unit']}" if meta["unit"] and number == (int,) else noun)
    if ok:
        return None
    return f"must be {wanted}, got {value!r}"


def _within(value, meta) -> bool:
    return ((meta["low"] is None or value >= meta["low"]) and (meta["high"] is None or value <= meta["high"])
            and (meta["above"] is None or value > meta["above"]))


def _range(meta, kind: str) -> str:
    low, above, high = (_number(meta[key]) for key in ("low", "above", "high"))
    if high is None:
        return f"{kind} >= {low}" if low is not None else f"{kind} > {above}"
    if low is None and above is not None:
        return f"{kind} over {above}, at most {high}"
    return f"{kind} from {low} to {high}"


def _number(value) -> str | None:
    return None if value is None else str(value) if isinstance(value, int) else f"{value:g}"


def add_flags(parser, cls, names, *, keep: bool = False) -> None:
    """A flag for each option `names` of `cls` on `parser` (or an argument group), its help and bounds from the
    declaration. With `keep`, a
    flag left out gives None (the style's own value stays); else the declared default."""
    for name in names:
        f = declared(cls)[name]
        meta = f.metadata
        flag = meta["flag"] or "--" + name.replace("_", "-")
        default = None if keep else f.default
        shown = "" if keep or isinstance(f.default, bool) or f.default in ("", None) else f" ({f.default})"
        if meta["kind"] is bool:
            parser.add_argument(flag, dest=name, action="store_const", const=True, default=default,
                                help=meta["help"])
            continue
        parser.add_argument(flag, dest=name, default=default, type=_parse(cls, name, meta["kind"]),
                            metavar=meta["metavar"] or None,
                            help=meta["help"] + shown + (f"; one of {', '.join(meta['choices'])}"
                                                         if meta["choices"] else ""))


def _parse(cls, name: str, kind):
    """An argparse type reading a flag's text as `kind` and checking it against the declaration."""
    def parse(text: str):
        if kind is str:
            value = text
        else:
            try:
                value = int(text) if kind is int else float(text)
            except ValueError:
                value = text
        wrong = problem(cls, name, value)
        if wrong:
            raise argparse.ArgumentTypeError(f"{text!r}: {wrong.split(', got')[0]}")
        return value

    return parse


@dataclass(frozen=True)
class GifOptions:
    """How frames become a GIF."""

    frame_ms: int = option(120, "duration of each frame", low=10, high=60_000, unit="milliseconds", metavar="MS")
    hold_first_ms: int = option(1200, "how long the photo shows before the dream starts", low=10, high=60_000,
                                unit="milliseconds", metavar="MS")
    hold_last_ms: int = option(2000, "how long the finished dream shows before the loop starts again", low=10,
                               high=60_000, unit="milliseconds", metavar="MS")
    pingpong: bool = option(False, "loop forward then back")
    palette: str = option("auto", "one palette for all frames (shared), one each (per-frame), or auto",
                          choices=PALETTES)
    dither: bool = option(False, "Floyd-Steinberg dithering in the GIF")
    lossy: int = option(0, "gifsicle --lossy: about 40 makes GIFs 15 % smaller", low=1, high=200, off=0)


@dataclass(frozen=True)
class RenderOptions:
    """Everything about a render that is not the style: output size, seed, batching, GIF and video options."""

    size: int = option(512, "long side of the GIF in pixels", low=MIN_SIZE, high=MAX_SIZE, unit="pixels")
    seed: int = option(0, "random seed: same seed, same GIF", low=0, high=MAX_SEED)
    batch: int | str = "auto"  # tiles per network call, or 'auto' (see dreamer.engine.batching)
    zoom: float | None = None  # zoom into the centre by this factor before each frame (the tunnel)
    gif: GifOptions = field(default_factory=GifOptions)
    video: VideoOptions = field(default_factory=VideoOptions)

