"""The static site: Jinja2 pages over a build plan. Index grid, a page per photo, a page per style.

All pages sit flat in the output folder and link relatively (`index.html`, `renders/<key>.gif`),
so the same files work from file:// and from a GitHub Pages project subpath.
"""

import hashlib
import re
import unicodedata
from pathlib import Path
from urllib.parse import quote

import jinja2
from jinja2.sandbox import SandboxedEnvironment, SecurityError

from dreamer.engine.precision import resolve
from dreamer.errors import ThemeError
from dreamer.gallery.manifest import VIDEO_NAMES
from dreamer.gallery.settings import video_options
from dreamer.style import clip_carry, clip_steps

TEMPLATES = Path(__file__).resolve().parent / "templates"  # package data: an installed Dreamer builds sites


def slug(text: str) -> str:
    """A safe file-name stem for `text`: ASCII words of its stem and a short hash of all of it,
    e.g. 'b-3f2a1c' for `<b>&"'.png`."""
    ascii_text = unicodedata.normalize("NFKD", Path(text).stem).encode("ascii", "ignore").decode()
    words = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:40].strip("-")
    tag = hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:6]
    return f"{words}-{tag}" if words else tag


def page_name(kind: str, name: str) -> str:
    """The file of a photo's or a style's page: `photo-chelsea-1a2b3c.html`."""
    return f"{kind}-{slug(name)}.html"


def _own_file(path: Path, folder) -> Path:
    """`path`, or a one-line ThemeError when it is a link to a file outside `folder`: a theme must not publish
    what it links to (~/.ssh/id_rsa)."""
    if not path.resolve().is_relative_to(Path(folder).resolve()):
        raise ThemeError(f"{path}: a link to {path.resolve()}, outside {folder}; copy the file into the theme "
                         "if it is meant to be published")
    return path


class _FolderLoader(jinja2.FileSystemLoader):
    """Jinja2's FileSystemLoader, refusing a template that links outside the folder it was found in."""

    def get_source(self, environment, template):
        source, filename, uptodate = super().get_source(environment, template)
        _own_file(Path(filename), next(f for f in self.searchpath if Path(filename).is_relative_to(f)))
        return source, filename, uptodate


class _Sandbox(SandboxedEnvironment):
    """Jinja2's sandbox, whose template errors (a theme reaching for Python's internals, an undefined name, bad
    syntax) stop the build as one ThemeError line naming the template's file and line."""

    def handle_exception(self, source=None):
        try:
            super().handle_exception(source)
        except jinja2.TemplateError as error:
            raise ThemeError(f"{_where(error, self.loader.searchpath)}: {_problem(error)}") from None


def _where(error: jinja2.TemplateError, folders) -> str:
    """'FILE, line N' of the innermost template in `error`'s traceback (a file in one of `folders`)."""
    where = "a template"
    tb = error.__traceback__
    while tb is not None:
        if any(Path(tb.tb_frame.f_code.co_filename).is_relative_to(folder) for folder in folders):
            where = f"{tb.tb_frame.f_code.co_filename}, line {tb.tb_lineno}"
        tb = tb.tb_next
    return where


def _problem(error: jinja2.TemplateError) -> str:
    """What went wrong, and for a refused access what templates may use instead."""
    message = " ".join(str(error).split())
    if isinstance(error, SecurityError):
        return (f"refused: {message} Templates render in Jinja2's sandbox: use the page's variables and "
                "filters, not Python's internals")
    return f"{type(error).__name__}: {message}"


def environment(settings) -> jinja2.Environment:
    """Templates from settings.templates (if set) over the built-in ones, autoescaped, in Jinja2's sandbox: a
    gallery.toml from someone else may name a theme, which must not run code."""
    folders = [str(f) for f in (settings.templates, TEMPLATES) if f is not None]
    env = _Sandbox(loader=_FolderLoader(folders), autoescape=True, undefined=jinja2.StrictUndefined,
                   trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["url"] = lambda path: quote(str(path), safe="/#")
    return env


def style_info(style, clip: bool = False) -> list[tuple[str, str]]:
    """(label, value) rows describing a style: its model, layers and parameters (`clip`: as it dreams a clip)."""
    rows = [("network", style.network),
            ("layers", ", ".join(f"{name} ×{weight:g}" for name, weight in style.layers.items()))]
    if style.channels:
        rows.append(("channels", "; ".join(f"{k}: {', '.join(map(str, v))}" for k, v in style.channels.items())))
    steps = clip_steps(style)
    rows += [("octaves", f"{style.octaves}, scale {style.octave_scale:g}"),
             ("steps", f"{style.steps} per octave, step size {style.step_size:g}"),
             ("clip", f"the first frame dreamed as a photo; each next one from {clip_carry(style):g} of the dream "
                      f"before, moved with the clip, then {steps} step{'s' * (steps != 1)} at full size")
             if clip and not style.target_class else ("frames", f"one every {style.every} steps"),
             ("precision", resolve(style.precision))]
    if style.style_image:
        rows.append(("painting", f"{Path(style.style_image).name} ×{style.style_weight:g} (its textures: Gram matrices)"))
    if style.keep_colors:
        rows.append(("colours", "kept from the photo"))
    return rows


def _context(plan) -> dict:
    settings, manifest, output = plan.settings, plan.manifest, plan.settings.output
    columns = [{"name": s.name, "page": page_name("style", s.name), "description": s.description,
                "network": s.network, "info": style_info(s), "clip_info": style_info(s, clip=True),
                "octaves": s.octaves, "octave_steps": s.steps}
               for s in settings.styles]
    rows = []
    for photo in sorted(plan.photos, key=lambda p: bool(p.clip)):  # clips (heavier) below the photos and static
        entry = manifest.photos.get(photo.key) if photo.key else None
        original = None
        if entry and all((output / name).is_file() for name in (entry["file"], *entry.get("videos", {}).values())):
            original = {"src": entry["file"], "width": entry["width"], "height": entry["height"],
                        "alt": f"{photo.name}, the original {'clip' if photo.clip else 'photo'}",
                        "videos": _videos(entry), "clip": _clip(entry)}
        row = {"name": photo.name, "page": page_name("photo", photo.name), "original": original,
               "error": photo.error, "clip": bool(photo.clip)}
        row["cells"] = [_cell(plan.job(photo, style), row, column, manifest, output)
                        for style, column in zip(settings.styles, columns)]
        rows.append(row)
    for i, column in enumerate(columns):
        column["cells"] = [row["cells"][i] for row in rows]
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", settings.intro) if p.strip()]
    description = settings.description or (re.split(r"(?<=\.)\s", paragraphs[0])[0] if paragraphs else
                                            f"Photos dreamed by {len(columns)} DeepDream styles, side by side.")
    return {"site": {"title": settings.title, "intro": paragraphs, "credits": settings.credits,
                     "description": description, "url": settings.site_url, "small": video_options(settings).small},
            "columns": columns, "rows": rows}


def _preview(description: str, cells) -> dict:
    """A page's description and its link-preview image: the still of its first finished dream."""
    ready = [c for c in cells if c["state"] == "ready"]
    return {"description": description, "image": ready[0]["still"] if ready else None,
            "image_alt": ready[0]["alt"] if ready else None}


def _cell(job, row, column, manifest, output: Path) -> dict:
    cell = {"row": row, "column": column, "state": "pending", "message": "not rendered yet",
            "width": (row["original"] or {}).get("width", 4), "height": (row["original"] or {}).get("height", 3)}
    entry = manifest.renders.get(job.key) if job.key else None
    files = [entry.get("gif"), entry["still"], *entry.get("videos", {}).values()] if entry else []
    if entry and all((output / name).is_file() for name in files if name):
        videos = _videos(entry)
        gif = entry.get("gif")
        cell.update(state="ready", gif=gif, still=entry["still"], width=entry["width"],
                    height=entry["height"], alt=f"{row['name']} dreamed with {column['name']}",
                    videos=videos, timeline=_timeline(entry) if videos else None, clip=_clip(entry),
                    download=(gif, "GIF") if gif else (entry["videos"]["mp4"], "MP4"))
    elif job.status == "failed":
        cell.update(state="failed", message=job.message)
    elif job.action == "skip" and job.message:  # a cell that never renders says why
        cell.update(state="skipped", message=job.message.removeprefix(f"{job.label}: "))
    return cell


def _videos(entry) -> list[tuple[str, str]]:
    """[(role, file)] of an entry's videos, roles from manifest.VIDEO_NAMES only: data never names an attribute."""
    videos = entry.get("videos", {})
    return [(role, videos[role]) for role in sorted(VIDEO_NAMES) if role in videos]


def _clip(entry) -> dict | None:
    """What the page's slider reads off a clip's video: its length in seconds and its number of frames."""
    return {k: entry["clip"][k] for k in ("length", "frames")} if "clip" in entry else None


def _timeline(entry) -> dict | None:
    """What the page's slider reads off a video: each frame's step and [start, end] seconds, space-separated."""
    if "steps" not in entry:
        return None
    return {"steps": " ".join(map(str, entry["steps"])),
            "times": " ".join(f"{start:g},{end:g}" for start, end in entry["times"])}


def static_sources(settings) -> dict[str, Path]:
    """name -> file of the static files the site copies (hidden ones aside): the built-in ones, overridden by
    settings.templates'."""
    sources = {}
    for folder in (TEMPLATES, settings.templates):
        if folder is not None and (folder / "static").is_dir():
            files = sorted(f for f in (folder / "static").iterdir() if f.is_file() and not f.name.startswith("."))
            sources.update({f.name: _own_file(f, folder) for f in files})
    return sources


def site_names(settings, photo_names) -> list[str]:
    """Every file write_site writes for these photos: pages, static files, .nojekyll (relative to the site)."""
    pages = [page_name("photo", name) for name in photo_names] + [page_name("style", s.name) for s in settings.styles]
    return [*pages, "index.html", *(f"static/{name}" for name in static_sources(settings)), ".nojekyll"]


def write_site(plan) -> None:
    """Write every page, the static files and .nojekyll through plan.files (which records them); files whose
    content is unchanged are left alone. Pages no longer needed are the build's to delete, after this."""
    pages = render_pages(plan)
    # What a page links to is written before it (static files, new pages, the other pages, the index),
    # so an interruption at any point leaves no broken link from the index.
    for name, source in static_sources(plan.settings).items():
        plan.files.write(f"static/{name}", source.read_bytes())
    plan.files.write(".nojekyll", b"")
    output = plan.settings.output
    for name in sorted(pages, key=lambda name: (name == "index.html", (output / name).exists())):
        plan.files.write(name, pages[name].encode("utf-8"))


def render_pages(plan) -> dict[str, str]:
    """{file name: HTML} of every page of the site as the plan's manifest has it (ThemeError from a bad theme)."""
    env = environment(plan.settings)
    context = _context(plan)
    pages = {}
    rows = context["rows"]
    styles = ", ".join(c["name"] for c in context["columns"])
    for i, row in enumerate(rows):
        preview = _preview(f"{row['name']} dreamed by {styles}.", row["cells"])
        pages[row["page"]] = env.get_template("photo.html").render(
            page="photo", url=row["page"], preview=preview, row=row, previous=rows[i - 1] if i else None,
            next=rows[i + 1] if i + 1 < len(rows) else None, **context)
    for column in context["columns"]:
        preview = _preview(column["description"] or f"Every photo dreamed by {column['name']}.", column["cells"])
        pages[column["page"]] = env.get_template("style.html").render(
            page="style", url=column["page"], preview=preview, column=column, **context)
    cells = [cell for row in rows for cell in row["cells"]]
    pages["index.html"] = env.get_template("index.html").render(
        page="index", url="", preview=_preview(context["site"]["description"], cells), **context)
    return pages
