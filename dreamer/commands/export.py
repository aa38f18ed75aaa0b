"""`dreamer export STYLE DIR`: a style as a TensorFlow SavedModel for TensorFlow Serving (dreamer.dreaming.export).
DIR must be new: the model is written beside it and renamed into place whole, so DIR never holds half a model."""

import os
import shutil
import tempfile
from pathlib import Path

from dreamer.errors import DreamerError

HELP = "write a style as a TensorFlow SavedModel for TensorFlow Serving"


def arguments(parser) -> None:
    """`dreamer export`'s arguments on `parser`."""
    parser.add_argument("style", help="the style to export (`dreamer styles` lists them)")
    parser.add_argument("folder", type=Path, metavar="DIR",
                        help="a new folder for the SavedModel (TensorFlow Serving reads MODELS/NAME/1 as version 1)")


def run(args) -> int:
    """Export the style into the new folder, whole or not at all."""
    from dreamer.engine.backends import activate

    activate("tensorflow")  # the graph is TensorFlow's, whatever KERAS_BACKEND says
    from dreamer.dreaming.export import check_exportable, export
    from dreamer.networks import get_style

    style = get_style(args.style)
    check_exportable(style)
    folder = args.folder
    if os.path.lexists(folder):
        raise DreamerError(f"{folder}: already exists; name a new folder (nothing is written over)")
    folder.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        export(style, temporary / "model")
        os.rename(temporary / "model", folder)
    finally:
        shutil.rmtree(temporary)
    print(f"{folder}: {style.name} as a SavedModel; serving_default(image: uint8 [H, W, 3], steps: int32 per octave) "
          f"-> frames: uint8 [N, H, W, 3] ({style.octaves} octaves, a frame every {style.every} steps)")
    return 0
