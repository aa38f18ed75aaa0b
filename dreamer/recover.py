"""A manifest rebuilt from what is on disk: after it was lost or garbled, or from a version-1 manifest.

Render files are named by their keys and carry Dreamer's mark (a GIF's comment says what made it), so every
complete, decodable render is recognised and nothing that is already there renders again.
"""

import re
from pathlib import Path

from dreamer.integrity import decode_gif
from dreamer.marks import read_mark
from dreamer.site_files import PHOTOS, RENDERS, SiteFiles

_KEYED = re.compile(r"^[0-9a-f]{16}(-small)?\.(gif|jpg|webm|mp4)$")
_V1_PAGE = re.compile(r"^(index|(photo|style)-[a-z0-9-]+)\.html$")  # what version 1 took as its pages


def adopt_marked(files: SiteFiles, static: dict) -> int:
    """Record as Dreamer's the files that the state folder's copy of the record lists (as recorded: a file
    changed since fails its check), then every other file of the site that carries Dreamer's mark (renders,
    photos, pages), the static files equal to the templates' (`static`: name -> source path) and an empty
    .nojekyll. Returns the count."""
    output = files.output
    files.names.update(files.recorded())
    candidates = [f"{sub}/{f.name}" for sub in (RENDERS, PHOTOS) if (output / sub).is_dir()
                  for f in sorted((output / sub).iterdir()) if _KEYED.match(f.name) and f.is_file()]
    candidates += [f.name for f in sorted(output.glob("*.html")) if f.is_file()]
    for name in candidates:
        if not files.owns(name) and read_mark(output / name) is not None:
            files.adopt(name)
    for name, source in static.items():
        target = output / "static" / name
        if not files.owns(f"static/{name}") and target.is_file() and target.read_bytes() == Path(source).read_bytes():
            files.adopt(f"static/{name}")
    if not files.owns(".nojekyll") and (output / ".nojekyll").is_file() and (output / ".nojekyll").stat().st_size == 0:
        files.adopt(".nojekyll")
    return len(files.names)


def adopt_legacy(files: SiteFiles, static: dict) -> None:
    """Record the files that a version-1 build took as its own: its renders' and photos' files, its pages, the
    static files and .nojekyll. A render whose files are missing or do not decode is dropped (it renders again)."""
    output, manifest = files.output, files.manifest
    names = [f.name for f in output.iterdir() if _V1_PAGE.match(f.name) and f.is_file()]
    names += [f"static/{name}" for name in static] + [".nojekyll"]
    names += [e["file"] for e in manifest.photos.values()]
    for entry in manifest.renders.values():
        names += [entry["gif"], entry["still"]]
    for name in names:
        if (output / name).is_file():
            files.adopt(name)
    for key, entry in list(manifest.renders.items()):
        found = on_disk(files, entry["gif"], entry["still"])
        if found is None or found["bytes"] != entry.get("bytes"):
            del manifest.renders[key]
        else:
            entry["gif_frames"] = found["gif_frames"]
    manifest.photos = {k: e for k, e in manifest.photos.items() if files.owns(e["file"])}


def on_disk(files: SiteFiles, gif: str, still: str, videos=()) -> dict | None:
    """A render's GIF, still and `videos` if all are Dreamer's and the GIF decodes: {gif_frames, width, height,
    bytes, still_bytes, mark (what the GIF's comment recorded)}; else None."""
    if not all(files.owns(name) for name in (gif, still, *videos)):
        return None
    try:
        count, width, height = decode_gif(files.output / gif)
    except Exception:  # Pillow raises many types on bad data
        return None
    return {"gif_frames": count, "width": width, "height": height, "bytes": files.names[gif]["bytes"],
            "still_bytes": files.names[still]["bytes"], "mark": read_mark(files.output / gif) or {}}
