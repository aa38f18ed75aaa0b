"""`dreamer train`: fine-tune a zoo network to recognise the user's art, then save it where `dreamer styles`
finds it (networks/trained.py).

Keras `fit` on the base network cut at its trunk's end plus a new head; the trunk's early blocks and every
batch norm stay frozen; random crops, flips and colour jitter (Keras preprocessing layers) in front of the
network during training only; classes weighted to count alike; early stopping on the held-out loss, keeping
the best epoch's weights.
"""

import json
import time
from dataclasses import dataclass
from pathlib import Path

from dreamer.engine import ENGINE_VERSION
from dreamer.errors import DreamerError
from dreamer.files.atomic import atomic_path, write_text
from dreamer.training import data

SIDE = 224
BATCH = 16
LEARNING_RATE = 3e-4
PATIENCE = 3


@dataclass(frozen=True)
class Trained:
    """A trained network: its description (as saved) and the Keras model."""

    description: dict
    model: object


def train(name: str, art, photos=None, base: str = "effnet-lite0", epochs: int = 10, side: int = SIDE,
          seed: int = 0, warn=print, progress: bool = True) -> Trained:
    """Train network `name` on the images under `art` (and `photos`) and save it."""
    from dreamer.networks import builtin_names, trained
    from dreamer.style import STYLES

    if base not in trained.BASES:
        raise DreamerError(f"--network {base}: train one of {', '.join(trained.BASES)}")
    if not 1 <= epochs <= 1000:
        raise DreamerError(f"--epochs {epochs}: use a whole number from 1 to 1000")
    trained.check_name(name, STYLES, builtin_names())
    classes = data.class_files(Path(art), Path(photos) if photos else None, warn)
    images = data.read(classes, round(side * 8 / 7), warn)
    learn, held = images.split(seed)
    started = time.time()
    classifier, history = _fit(base, learn, held, side, epochs, seed, progress)
    accuracy = history["val_accuracy"][history["val_loss"].index(min(history["val_loss"]))]
    description = {
        "name": name, "base": base, "classes": images.classes,
        "images": {c: int((images.labels == i).sum()) for i, c in enumerate(images.classes)},
        "preprocessing": f"RGB in [-1, 1]; {base}'s own preprocessing inside the network",
        "side": side, "held_out_accuracy": round(float(accuracy), 4), "held_out_images": len(held.labels),
        "chance": round(float(max((held.labels == i).mean() for i in range(len(images.classes)))), 4),
        "epochs": len(history["val_loss"]), "seconds": round(time.time() - started, 1),
        "art": str(Path(art).resolve()), "photos": str(Path(photos).resolve()) if photos else None,
        "backend": _backend(), "engine": ENGINE_VERSION, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return Trained(_save(classifier, description), classifier)


def _backend() -> str:
    import keras

    return keras.backend.backend()


def _fit(base, learn, held, side, epochs, seed, progress):
    """The classifier fine-tuned on `learn`, and Keras's history (held-out loss and accuracy per epoch)."""
    import keras
    import numpy as np
    from keras import layers

    from dreamer.engine.precision import dtype_policy
    from dreamer.networks import network, trained

    keras.utils.set_random_seed(seed)
    with dtype_policy("float32"):
        classifier = trained.build_classifier(network(base).build(), base, len(learn.classes))
        _freeze(classifier, trained.BASES[base].train_from)
        model = keras.Sequential([
            keras.Input(learn.pixels.shape[1:]),
            layers.RandomCrop(side, side, seed=seed),  # at inference: the whole square, resized
            layers.RandomFlip("horizontal", seed=seed),
            layers.RandomColorJitter((0, 255), brightness_factor=0.15, contrast_factor=0.2,
                                     saturation_factor=(0.35, 0.65), hue_factor=0.03, seed=seed),
            layers.Rescaling(1 / 127.5, offset=-1.0),  # to the networks' [-1, 1]
            classifier,
        ])
    model.compile(keras.optimizers.Adam(LEARNING_RATE),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    counts = np.bincount(learn.labels, minlength=len(learn.classes))
    callbacks = [keras.callbacks.EarlyStopping("val_loss", patience=PATIENCE, restore_best_weights=True)]
    if progress:
        from tqdm.keras import TqdmCallback

        callbacks.append(TqdmCallback(verbose=1, leave=False))
    history = model.fit(learn.pixels.astype("float32"), learn.labels, batch_size=BATCH, epochs=epochs,
                        validation_data=(held.pixels.astype("float32"), held.labels), shuffle=True, verbose=0,
                        class_weight={i: len(learn.labels) / (len(counts) * n) for i, n in enumerate(counts)},
                        callbacks=callbacks)
    return classifier, history.history


def _freeze(model, train_from: str) -> None:
    """Freeze every layer before `train_from`, and every batch norm (they keep their statistics)."""
    learning = False
    for layer in model.layers:
        learning = learning or layer.name == train_from
        layer.trainable = learning and layer.__class__.__name__ != "BatchNormalization"


def _save(classifier, description: dict) -> dict:
    """Write the weights, then the description (its sha256 of them) into the network's folder, each atomically:
    a folder without a description is not a network, so an interrupted save leaves none half made."""
    from dreamer.files.digest import file_sha256
    from dreamer.networks import trained

    folder = trained.networks_dir() / description["name"]
    (folder / trained.DESCRIPTION_FILE).unlink(missing_ok=True)  # ours: the network of this name trained before
    with atomic_path(folder / trained.WEIGHTS_FILE) as tmp:
        classifier.save_weights(tmp)
    description["weights_sha256"] = file_sha256(folder / trained.WEIGHTS_FILE)
    write_text(folder / trained.DESCRIPTION_FILE, json.dumps(description, indent=2) + "\n")
    return description
