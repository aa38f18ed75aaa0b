"""site/manifest.json: what every render and photo of a site was made from, and every file that is Dreamer's.

The manifest is committed with the site, so a merge or a pull request can put anything in it: it is read as
untrusted input. Every entry is checked when it is read (types, known keys, and each file name one of the
shapes Dreamer writes, inside the site); a bad entry is dropped with one warning line, never acted on.
"""

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from dreamer.engine import ENGINE_VERSION
from dreamer.files.atomic import write_text
from dreamer.gallery.keys import KEY_CHARS
from dreamer.media.video import FORMATS, VideoOptions

RENDERS, PHOTOS, STATIC, MANIFEST = "renders", "photos", "static", "manifest.json"
STATE = ".dreamer"  # the build lock, its holder and the stat cache: local, never published
MANIFEST_VERSION = 2  # 2 records every file of the site (1: renders and photos only)
_EVERY_VIDEO = VideoOptions(FORMATS, small=1)  # every video a render may have: each format, full and small
VIDEO_NAMES = tuple(_EVERY_VIDEO.paths("x.gif"))  # a render's videos by role: "webm", "mp4", "webm-small", ...

_KEY = re.compile(f"^[0-9a-f]{{{KEY_CHARS}}}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_PAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.html$")
_STATIC = re.compile(f"^{STATIC}/[^/.\\x00-\\x1f][^/\\x00-\\x1f]*$")  # a theme's file, under its own name


def site_path(name) -> bool:
    """Whether `name` is a file name a build may write in a site: a page (`x.html`), `.nojekyll`, a render's or
    photo's file under its key, or a static file; relative, normalised, and nothing above the site."""
    if not isinstance(name, str) or len(name) > 255 or PurePosixPath(name).as_posix() != name:
        return False
    return name == ".nojekyll" or bool(_PAGE.match(name) or keyed(name) or _STATIC.match(name))


def keyed(name: str) -> bool:
    """Whether `name` is a render's or photo's file under its content key (rendered again if it fails to verify):
    one of render_files(key) or the photo's, for a key of the right form."""
    folder, _, file = name.partition("/")
    key = file.split(".")[0].removesuffix("-small")
    if not _KEY.match(key):
        return False
    return name in (render_files(key) if folder == RENDERS else photo_files(key)).values()


def render_files(key: str) -> dict[str, str]:
    """Every name a render with this key may have, by role: gif, still and VIDEO_NAMES."""
    gif = f"{RENDERS}/{key}.gif"
    videos = {role: path.as_posix() for role, (path, _) in _EVERY_VIDEO.paths(gif).items()}
    return {"gif": gif, "still": f"{RENDERS}/{key}.jpg", **videos}


# The videos of a clip, dreamed or its source: both formats at full size, never a small rendition.
CLIP_VIDEOS = FORMATS


def photo_files(key: str) -> dict[str, str]:
    """Every name a photo with this key may have, by role: its picture ("file"; a clip's poster) and a clip's
    videos."""
    return {"file": f"{PHOTOS}/{key}.jpg", **{fmt: f"{PHOTOS}/{key}.{fmt}" for fmt in CLIP_VIDEOS}}


@dataclass
class Manifest:
    """The manifest: `renders` key -> {input, input_sha256, style, definition, options, precision, backend, engine,
    frames, gif_frames, seconds, width, height, bytes, still_bytes, gif, still, videos, steps, times} (a clip's:
    `clip` {length, frames, audio}, its still the poster, gif, bytes and gif_frames only where it has a GIF); `photos`
    key -> {input, sha256, width, height, bytes, file} (a clip's: its poster, with `videos` and `clip`); `files` path relative to the site -> {bytes, sha256} for
    every file a build wrote (renders, photos, pages, static files, .nojekyll): the only files a build may replace
    or delete. `found` says what load found: "ok", "missing", "corrupt" (not a Dreamer manifest), or "legacy"
    (version 1, which recorded no files); `problems` the warning line of each entry dropped."""

    renders: dict = field(default_factory=dict)
    photos: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)
    found: str = "ok"
    problems: list = field(default_factory=list)

    @classmethod
    def load(cls, path) -> "Manifest":
        """The manifest at `path`, its bad entries dropped; an empty one, saying why in `found`, if it is
        missing or is not a Dreamer manifest."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(found="missing")
        except (OSError, ValueError):
            return cls(found="corrupt")
        version = data.get("version") if isinstance(data, dict) else None
        sections = ("renders", "photos") if version == 1 else ("renders", "photos", "files")
        if version not in (1, MANIFEST_VERSION) or not all(isinstance(data.get(s), dict) for s in sections):
            return cls(found="corrupt")
        problems = []
        legacy = version == 1
        renders = _checked(data["renders"], lambda k, e: _render_problem(k, e, legacy), "renders", path, problems)
        photos = _checked(data["photos"], _photo_problem, "photos", path, problems)
        files = {} if legacy else _checked(data["files"], _file_problem, "files", path, problems)
        return cls(renders, photos, files, "legacy" if legacy else "ok", problems)

    def save(self, path) -> None:
        """Write it atomically (unless unchanged), keys sorted so that commits show small diffs."""
        data = {"version": MANIFEST_VERSION, "engine": ENGINE_VERSION, "renders": self.renders,
                "photos": self.photos, "files": self.files}
        text = json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
        try:
            if Path(path).read_text(encoding="utf-8") == text:
                return
        except (OSError, ValueError):
            pass
        write_text(path, text)


def checked_files(records, where) -> tuple[dict, list[str]]:
    """The {name: {bytes, sha256}} records of `records` that are well formed, and a warning line for each other
    (`where` names the file they came from)."""
    problems = []
    if not isinstance(records, dict):
        return {}, [f"warning: {where}: not a record of files; ignored"]
    return _checked(records, _file_problem, "files", where, problems), problems


def _checked(section: dict, problem_of, name: str, path, problems: list) -> dict:
    """The entries of `section` that problem_of(key, entry) finds nothing wrong with; a line for each other."""
    kept = {}
    for key, entry in section.items():
        problem = problem_of(key, entry)
        if problem is None:
            kept[key] = entry
        else:  # json.dumps: a name from someone else may hold control characters
            problems.append(f"warning: {path}: {name}[{json.dumps(key)[:120]}] ignored: {problem}")
    return kept


def _text(value) -> bool:
    return isinstance(value, str) and len(value) <= 1000


def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 1 << 40


def _side(value) -> bool:
    return _count(value) and 1 <= value <= 100_000


def _seconds(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def _sha(value) -> bool:
    return isinstance(value, str) and bool(_SHA256.match(value))


_RENDER_FIELDS = {
    "input": _text, "input_sha256": _sha, "style": _text, "definition": lambda v: isinstance(v, dict),
    "options": lambda v: isinstance(v, dict), "precision": lambda v: v is None or _text(v),
    "backend": lambda v: v is None or _text(v), "engine": _text, "frames": _side, "gif_frames": _side,
    "seconds": lambda v: v is None or _seconds(v), "width": _side, "height": _side, "bytes": _count,
    "still_bytes": _count, "gif": _text, "still": _text, "videos": lambda v: isinstance(v, dict),
    "steps": lambda v: isinstance(v, list) and all(_count(s) for s in v),
    "times": lambda v: isinstance(v, list) and all(isinstance(t, list) and len(t) == 2 and all(map(_seconds, t))
                                                   for t in v),
    "clip": lambda v: _clip(v),
}


def _clip(value) -> bool:
    """A clip's facts: {length in seconds, frames, whether it has sound}."""
    return (isinstance(value, dict) and set(value) == {"length", "frames", "audio"} and _seconds(value["length"])
            and _side(value["frames"]) and isinstance(value["audio"], bool))


# What every entry has (a version-1 entry lacks gif_frames and videos, which a build works out from the files).
_RENDER_NEEDS = {"gif", "still", "width", "height", "bytes"}
# A clip's entry has no GIF unless it was made from an animation, and always its two videos.
_CLIP_NEEDS = {"still", "width", "height", "frames", "still_bytes", "videos", "clip"}
_PHOTO_NEEDS = {"input": _text, "sha256": _sha, "file": _text, "width": _side, "height": _side, "bytes": _count}
_PHOTO_FIELDS = {**_PHOTO_NEEDS, "videos": lambda v: isinstance(v, dict), "clip": _clip}


def _fields_problem(entry, fields: dict, needed) -> str | None:
    if not isinstance(entry, dict):
        return "not an object"
    unknown = sorted(set(entry) - set(fields))
    missing = sorted(set(needed) - set(entry))
    wrong = sorted(k for k, v in entry.items() if k in fields and not fields[k](v))
    if unknown or missing or wrong:
        found = (("unknown field(s)", unknown), ("missing field(s)", missing), ("bad value of", wrong))
        return "; ".join(f"{what} {', '.join(json.dumps(k)[:60] for k in keys)}" for what, keys in found if keys)
    return None


def _render_problem(key, entry, legacy: bool) -> str | None:
    if not isinstance(key, str) or not _KEY.match(key):
        return "not a render key"
    clip = isinstance(entry, dict) and "clip" in entry and not legacy
    if clip:
        needed = _CLIP_NEEDS | ({"bytes", "gif_frames"} if "gif" in entry else set())
    else:
        needed = _RENDER_NEEDS if legacy else _RENDER_NEEDS | {"frames", "gif_frames", "still_bytes"}
    problem = _fields_problem(entry, _RENDER_FIELDS, needed)
    if problem:
        return problem
    names = render_files(key)
    files = [("still", entry["still"]), *entry.get("videos", {}).items()] + (
        [("gif", entry["gif"])] if "gif" in entry else [])
    wrong = [role for role, file in files if names.get(role) != file]
    if wrong:
        return f"not the render's own file(s): {', '.join(json.dumps(role)[:80] for role in wrong)}"
    if clip and set(entry["videos"]) != set(CLIP_VIDEOS):
        return f"a clip's videos are {' and '.join(CLIP_VIDEOS)}, at full size"
    if ("steps" in entry) != ("times" in entry) or len(entry.get("steps", ())) != len(entry.get("times", ())):
        return "steps and times do not match"
    return None


def _photo_problem(key, entry) -> str | None:
    if not isinstance(key, str) or not _KEY.match(key):
        return "not a photo key"
    problem = _fields_problem(entry, _PHOTO_FIELDS, _PHOTO_NEEDS)
    if problem is None and entry["file"] != f"{PHOTOS}/{key}.jpg":
        return f"its file is not {PHOTOS}/{key}.jpg"
    if problem is None and ("videos" in entry) != ("clip" in entry):
        return "a clip has both videos and clip, a photo neither"
    names = photo_files(key)
    if problem is None and "videos" in entry and entry["videos"] != {fmt: names[fmt] for fmt in CLIP_VIDEOS}:
        return f"its videos are not {' and '.join(names[fmt] for fmt in CLIP_VIDEOS)}"
    return problem


def _file_problem(name, record) -> str | None:
    if not site_path(name):
        return "not a file name Dreamer writes inside the site; never touched"
    if not isinstance(record, dict) or set(record) != {"bytes", "sha256"}:
        return "not a {bytes, sha256} record"
    size, sha = record["bytes"], record["sha256"]
    if not ((size is None and sha is None) or (_count(size) and _sha(sha))):
        return "bytes and sha256 are not a size and a hex sha256"
    return None
