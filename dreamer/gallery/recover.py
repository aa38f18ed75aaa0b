"""A manifest rebuilt from what is on disk: after it was lost or garbled, or from a version-1 manifest.

Render files are named by their keys and carry Dreamer's mark (a GIF's comment says what made it), so every
complete, decodable render that the build needs is recognised and nothing that is already there renders again.
Only files at names the build writes are claimed, and only when they prove they are Dreamer's.
"""

from dreamer.gallery.files import SiteFiles
from dreamer.media.gif import decode_gif
from dreamer.media.marks import read_mark


def adopt_marked(files: SiteFiles, wanted) -> None:
    """Record as Dreamer's the files that the state folder's copy of the record lists (as recorded: a file
    changed since fails its check), then each file at a name this build writes (`wanted`) that proves it is
    Dreamer's: its mark (renders, photos, pages), its template's bytes (static files), an empty .nojekyll.
    Nothing else in the folder is claimed, whatever its name or content."""
    for name, record in files.recorded().items():
        files.names.setdefault(name, record)
    files.adopt_proven(wanted)


def adopt_legacy(files: SiteFiles, wanted) -> None:
    """Record what a version-1 build wrote that this build writes too (`wanted`): the renders' and photos' files
    its manifest lists under their keys (version 1 marked none), and the pages, static files and .nojekyll that
    prove they are Dreamer's. A render whose files are missing or do not decode is dropped (it renders again)."""
    output, manifest = files.output, files.manifest
    wanted = set(wanted)
    listed = {e["file"] for e in manifest.photos.values()}
    listed |= {name for entry in manifest.renders.values() for name in (entry["gif"], entry["still"])}
    for name in sorted(listed & wanted):
        if (output / name).is_file() and not (output / name).is_symlink():
            files.adopt(name)
    files.adopt_proven(sorted(wanted - listed))
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
