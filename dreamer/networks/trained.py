"""Networks the user fine-tuned on their own art (`dreamer train`), kept in the data folder.

Each is a folder `<data>/networks/NAME/` holding `network.weights.h5` (every weight: the base network's and the
new head's) and `network.json`, its description: the base network, the classes, the layers to dream on, the
held-out accuracy and the weights' sha256. The description is written last, so a folder without one (an
interrupted save) is not a network. Registered under NAME beside the built-in networks; its input is RGB in
[-1, 1] like theirs (the base network's preprocessing is inside), its head is `logits` over its classes.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from dreamer.errors import StyleError, WeightsError

WEIGHTS_FILE = "network.weights.h5"
DESCRIPTION_FILE = "network.json"


@dataclass(frozen=True)
class Base:
    """How a zoo network is fine-tuned: where its trunk ends, what stays frozen, which layers dream well."""

    features: str  # the last trunk layer: the new head pools it
    train_from: str  # the first layer that learns; those before it stay as they are
    mid: str  # the layers of the NAME-mid and NAME-deep styles (both in the part that learns)
    deep: str
    step_size: float


BASES = {
    "effnet-lite0": Base("head_relu", "block10_expand_conv", "block11_project_bn", "block15_project_bn", 0.03),
    "vgg16": Base("block5_conv3", "block4_conv1", "block4_conv3", "block5_conv3", 0.02),
    "mobilenetv2": Base("out_relu", "block_10_expand", "block_13_expand_relu", "block_16_project_BN", 0.03),
}


def networks_dir() -> Path:
    from dreamer.files.paths import data_dir

    return data_dir() / "networks"


def descriptions() -> dict[str, dict]:
    """Every saved network's description, by name (folders without a readable description are skipped)."""
    folder = networks_dir()
    named = (description(path.parent.name) for path in sorted(folder.glob(f"*/{DESCRIPTION_FILE}")))
    return {d["name"]: d for d in named if d is not None}


def description(name: str) -> dict | None:
    """The description of the saved network `name`, or None if there is none (or it is unreadable)."""
    try:
        found = json.loads((networks_dir() / name / DESCRIPTION_FILE).read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) and found.get("name") == name and found.get("base") in BASES else None


def weights_path(name: str) -> Path:
    return networks_dir() / name / WEIGHTS_FILE


def weights_digest(network: str) -> str | None:
    """The sha256 of a trained network's weights (part of its renders' keys), or None for other networks."""
    found = description(network) if "/" not in network and not network.startswith(".") else None
    return None if found is None else found["weights_sha256"]


def build_classifier(trunk, base: str, classes: int):
    """`trunk`, the base zoo network `base` (built, with its own weights), cut at its trunk's end, plus a new
    head: pooling, dropout and `logits` over `classes`."""
    import keras
    from keras import layers

    x = layers.GlobalAveragePooling2D(name="art_pool")(trunk.get_layer(BASES[base].features).output)
    x = layers.Dropout(0.3, name="art_dropout")(x)
    logits = layers.Dense(classes, dtype="float32", name="logits")(x)
    return keras.Model(trunk.input, logits, name=f"{base}-art")


def load(name: str):
    """A saved network, rebuilt and given its trained weights."""
    from dreamer.networks.registry import NETWORKS  # the built-in bases are registered before any trained one

    found = description(name)
    model = build_classifier(NETWORKS[found["base"]].build(), found["base"], len(found["classes"]))
    try:
        model.load_weights(weights_path(name))
    except Exception as exc:
        raise WeightsError(f"{weights_path(name)}: cannot load these weights ({exc.__class__.__name__}); "
                           f"train {name} again with `dreamer train`") from None
    return model


def register_all(networks: dict) -> None:
    """Register every saved network in `networks` beside the built-in ones."""
    from dreamer.networks.registry import Network

    for name, description in descriptions().items():
        if name in networks and not networks[name].trained:
            continue  # a built-in name is never shadowed
        networks[name] = Network(
            name=name, summary=f"{description['base']} fine-tuned on {len(description['classes'])} classes of art",
            weights=f"trained by `dreamer train` ({weights_path(name)})",
            build=lambda name=name: load(name), classes=lambda classes=tuple(description["classes"]): list(classes),
            trained=True)


def styles() -> list:
    """The styles of every saved network: NAME-mid and NAME-deep (a mid and a deep layer, both fine-tuned) and
    NAME-class (toward one of its classes: the first, or `--class`)."""
    from dreamer.style import Style

    made = []
    for name, description in descriptions().items():
        base = BASES[description["base"]]
        trained_on = f"{description['base']} fine-tuned on {', '.join(description['classes'])}"
        made += [
            Style(f"{name}-mid", name, {base.mid: 1.0}, step_size=base.step_size,
                  description=f"{base.mid} of {trained_on}"),
            Style(f"{name}-deep", name, {base.deep: 1.0}, step_size=base.step_size,
                  description=f"{base.deep} of {trained_on}"),
            Style(f"{name}-class", name, {}, octaves=1, steps=250, step_size=0.05, every=10,
                  target_class=description["classes"][0], contrast=True,
                  description=f"toward one class of {trained_on} (--class to choose)"),
        ]
    return made


def check_name(name: str, taken, builtin) -> None:
    """Raise a one-line StyleError unless `name` can name a new network: lower-case letters, digits and dashes,
    not a built-in network (`builtin`), its styles' names not `taken` by the zoo's."""
    import re

    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,39}", name):
        raise StyleError(f"network name {name!r}: use lower-case letters, digits and dashes (up to 40), "
                         "such as my-paintings")
    if name in builtin:
        raise StyleError(f"network name {name!r}: a built-in network; choose another name")
    for style in (f"{name}-{kind}" for kind in ("mid", "deep", "class")):
        if style in taken:
            raise StyleError(f"network name {name!r}: the zoo has a style {style}; choose another name")
