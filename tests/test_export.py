"""`dreamer export STYLE DIR`: the SavedModel loads in a fresh process that imports TensorFlow only (no Dreamer, no
Keras of ours), its `serving_default` dreams a photo into the frames the engine makes, and saved_model_cli shows its
signature. The engine is run with the export's rolls (TensorFlow's stateless draws instead of NumPy's): with the
same rolls the frames agree to rounding; with NumPy's own they differ where the wrap-around seams fall."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO

PHOTO = REPO / "inputs" / "chelsea.jpg"
LOAD = """
import json, sys
import numpy as np
import tensorflow as tf
serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
frames = serve(image=tf.constant(np.load(sys.argv[2])), steps=tf.constant(int(sys.argv[3])))["frames"]
np.save(sys.argv[4], frames.numpy())
print(json.dumps(sorted(name for name in sys.modules if name == "dreamer" or name.startswith("dreamer."))))
"""


def dreamer(*args, cwd):
    return subprocess.run([sys.executable, "-m", "dreamer", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=600)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    done = dreamer("export", "vgg16-textures", "models/textures/1", cwd=folder)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("models/textures/1: vgg16-textures as a SavedModel")
    return folder / "models" / "textures" / "1"


class ExportRolls:
    """The engine's TensorFlow stepper, rolling each step as the exported graph does instead of by NumPy's draws."""

    whole_octaves = False

    def __init__(self, stepper):
        self.stepper, self.done = stepper, 0

    def advance(self, groups, shifts, *args, **options):
        from dreamer.dreaming.export import roll

        height, width = groups[0].shape[1:3]
        rolls = [[[int(v) for v in roll(0, self.done + k + 1, height, width)]] for k in range(len(shifts))]
        self.done += len(shifts)
        return self.stepper.advance(groups, np.array(rolls), *args, **options)


def test_the_savedmodel_dreams_the_engines_frames_in_a_process_without_dreamer(exported, tmp_path):
    from dreamer.dreaming import prepare, schedule_of
    from dreamer.engine.loop import dream
    from dreamer.media.images import load_image, resize_to_long_side
    from dreamer.networks import get_style

    photo = resize_to_long_side(load_image(PHOTO), 64)  # 64 x 43: four octaves of 1 step, the first ones at 32 px
    np.save(tmp_path / "photo.npy", photo)
    loaded = subprocess.run([sys.executable, "-c", LOAD, str(exported), str(tmp_path / "photo.npy"), "1",
                             str(tmp_path / "frames.npy")], capture_output=True, text=True, timeout=600,
                            env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, cwd=tmp_path)
    assert loaded.returncode == 0, loaded.stderr
    assert json.loads(loaded.stdout.splitlines()[-1]) == []  # no module of Dreamer's was imported
    served = np.load(tmp_path / "frames.npy")

    style = get_style("vgg16-textures").replace(steps=1, precision="float32")  # the export's float32
    stepper = prepare(style, 64)[2]
    engine = np.stack(list(dream(ExportRolls(stepper), photo, schedule_of(style), seed=0)))
    assert served.shape == engine.shape == (2, 43, 64, 3) and served.dtype == np.uint8  # the photo, the dream
    assert np.array_equal(served[0], photo)
    difference = np.abs(served.astype(int) - engine.astype(int))
    # The same ops on the same rolls; the graph sums in its own order, so a value near a rounding edge may land one
    # or two levels away, and the next steps carry it a little. A different dream would differ by tens of levels.
    assert difference.max() <= 3 and difference.mean() < 0.1
    assert np.abs(engine[-1].astype(int) - photo).mean() > 2  # and it did dream


def test_saved_model_cli_shows_the_serving_signature(exported):
    shown = subprocess.run([os.path.join(os.path.dirname(sys.executable), "saved_model_cli"), "show", "--dir",
                            str(exported), "--all"], capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0, shown.stderr
    signature = shown.stdout.split("signature_def['serving_default']:", 1)[1]
    for line in ["inputs['image'] tensor_info:\n        dtype: DT_UINT8\n        shape: (-1, -1, 3)",
                 "inputs['steps'] tensor_info:\n        dtype: DT_INT32\n        shape: ()",
                 "outputs['frames'] tensor_info:\n        dtype: DT_UINT8\n        shape: (-1, -1, -1, 3)",
                 "Method name is: tensorflow/serving/predict"]:
        assert line in signature


def test_export_refuses_an_existing_folder_and_a_class_style_before_it_writes(tmp_path):
    from argparse import Namespace

    from dreamer.commands.export import run
    from dreamer.errors import DreamerError

    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "mine.txt").write_text("keep me")
    for style, folder, words in [("vgg16-textures", tmp_path / "taken", "taken: already exists"),
                                 ("effnet-lite0-class", tmp_path / "new", "a class style cannot be exported")]:
        with pytest.raises(DreamerError, match=words) as refused:
            run(Namespace(style=style, folder=folder))
        assert "\n" not in str(refused.value)
    assert (tmp_path / "taken" / "mine.txt").read_text() == "keep me" and not (tmp_path / "new").exists()
