"""The images a network is trained on: classes from folders, every image read once into a square array, a
held-out split.

Subfolders of the art folder are the classes (movements, artists), their images found at any depth; an art
folder without subfolders is one class, "art", against a "photo" class from the photos folder. A file that is
not a usable image is skipped with a line naming it; a class needs at least two images (one to learn from, one
to hold out), and there must be two classes.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from dreamer.errors import DreamerError, InputError
from dreamer.media.images import load_image

MIN_PER_CLASS = 2
HELD_OUT = 0.2


@dataclass
class Images:
    """Square uint8 images (N x side x side x 3), their class indices and the class names."""

    pixels: np.ndarray
    labels: np.ndarray
    classes: list[str]

    def split(self, seed: int = 0) -> tuple["Images", "Images"]:
        """(to learn from, held out): a seeded `HELD_OUT` share of every class, at least one image each."""
        rng = np.random.default_rng(seed)
        held = []
        for label in range(len(self.classes)):
            members = rng.permutation(np.flatnonzero(self.labels == label))
            held += list(members[:max(1, round(HELD_OUT * len(members)))])
        out = np.zeros(len(self.labels), bool)
        out[held] = True
        return self._subset(~out), self._subset(out)

    def _subset(self, mask) -> "Images":
        return Images(self.pixels[mask], self.labels[mask], self.classes)


def class_files(art: Path, photos: Path | None, warn=print) -> dict[str, tuple[Path, list[Path]]]:
    """{class name: (its folder, its files)}, or a one-line DreamerError naming the folder at fault; `warn` gets a
    line for files left beside class folders (they belong to no class)."""
    if not art.is_dir():
        raise DreamerError(f"{art}: no such folder; give a folder of art images (or of class folders)")
    folders = sorted(p for p in art.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(folders) == 1:
        raise DreamerError(f"{art}: one class folder ({folders[0].name}); add a folder for another class, or "
                           "put the art straight into it to train art against photos")
    if folders:
        loose = _files(art, deep=False)
        if loose:
            warn(f"ignored {len(loose)} file(s) in {art} beside its class folders, such as {loose[0].name}: "
                 "move them into a class folder")
        return {folder.name: (folder, _files(folder, deep=True)) for folder in folders}
    if photos is None or not photos.is_dir():
        raise DreamerError(f"{art}: art without class folders trains against photos, and {photos} is not a "
                           "folder; pass --photos FOLDER")
    return {"art": (art, _files(art, deep=False)), "photo": (photos, _files(photos, deep=False))}


def _files(folder: Path, deep: bool) -> list[Path]:
    """The files in a folder (at any depth if `deep`), hidden ones left out."""
    found = folder.rglob("*") if deep else folder.iterdir()
    return sorted(p for p in found
                  if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def read(classes: dict[str, tuple[Path, list[Path]]], side: int, warn=print) -> Images:
    """Every usable image of every class as a `side` x `side` centre square; `warn` gets a line per file skipped.
    Raises a one-line DreamerError for a class with fewer than MIN_PER_CLASS usable images."""
    pixels, labels = [], []
    for label, (name, (folder, paths)) in enumerate(classes.items()):
        usable = 0
        for path in paths:
            try:
                pixels.append(square(load_image(path, folder=f"{path.parent}/"), side))
            except InputError as exc:
                warn(f"skipped {exc}")
                continue
            labels.append(label)
            usable += 1
        if usable < MIN_PER_CLASS:
            count = {0: "no images", 1: "one image"}.get(usable, f"{usable} images")
            raise DreamerError(f"{folder}: {count} for class {name!r}; a class needs at least "
                               f"{MIN_PER_CLASS} (a few hundred are better)")
    return Images(np.stack(pixels), np.array(labels), list(classes))


def square(image: np.ndarray, side: int) -> np.ndarray:
    """The image's centre square, scaled to `side` x `side` (Pillow's ImageOps.fit)."""
    return np.asarray(ImageOps.fit(Image.fromarray(image), (side, side), Image.BICUBIC))
