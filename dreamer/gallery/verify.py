"""`build.py --verify`: every file of the site against the manifest's sha256, every GIF and video decoded."""

import os

from dreamer.gallery.integrity import check_gif, check_video
from dreamer.files.digest import file_sha256
from dreamer.gallery.manifest import MANIFEST, Manifest


def verify(output, out) -> int:
    """Print one line per file that is missing, changed or undecodable, then a summary; the problem count."""
    manifest = Manifest.load(output / MANIFEST)
    if manifest.found != "ok":
        print(f"{output / MANIFEST}: {manifest.found} (a version-2 Dreamer manifest is needed); run "
              "python build.py to rebuild it", file=out)
        return 1
    problems = list(manifest.problems)
    for name, expected in sorted(manifest.files.items()):
        path = output / name
        if expected["sha256"] is None:
            problems.append(f"{path}: recorded but never finished (an interrupted build); run python build.py")
        elif not path.is_file():
            problems.append(f"{path}: missing")
        elif (size := os.stat(path).st_size) != expected["bytes"]:
            problems.append(f"{path}: {size} bytes, the manifest says {expected['bytes']}")
        elif file_sha256(path) != expected["sha256"]:
            problems.append(f"{path}: its sha256 is not the manifest's (changed since Dreamer wrote it)")
    for key, entry in sorted(manifest.renders.items()):
        videos = list(entry.get("videos", {}).values())
        gif = entry.get("gif")  # a clip made from a video has none
        for name in (*([gif] if gif else []), entry["still"], *videos):
            if name not in manifest.files:
                problems.append(f"{output / name}: render {key}'s file is not in the manifest's files")
        if gif and (output / gif).is_file():
            wrong = check_gif(output / entry["gif"], entry["gif_frames"], entry["width"], entry["height"])
            if wrong:
                problems.append(f"{output / entry['gif']}: {wrong}")
        for name in videos:
            if (output / name).is_file() and (wrong := check_video(output / name)):
                problems.append(f"{output / name}: {wrong}")
    for line in problems:
        print(line, file=out)
    gifs = len(manifest.renders)
    videos = sum(len(entry.get("videos", {})) for entry in manifest.renders.values())
    print(f"verified {len(manifest.files)} files, {gifs} GIFs and {videos} videos: "
          + (f"{len(problems)} problem(s)" if problems else "all intact"), file=out)
    return len(problems)
