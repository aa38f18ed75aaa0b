"""The networks Dreamer can dream with, behind one interface.

Every network takes RGB images in [-1, 1], shape (batch, height, width, 3), and does its own
preprocessing inside, so step sizes and clipping mean the same for every network.
"""

import functools
from pathlib import Path

from dreamer.errors import StyleError, closest
from dreamer.networks.registry import NETWORKS, KerasNetwork, Network, check_layers, register
from dreamer.style import PAINTING_STEP_SIZE, STYLES, Style

__all__ = ["NETWORKS", "KerasNetwork", "Network", "all_styles", "builtin_names", "check_layers", "class_names",
           "fetch_weights", "get_style", "load_network", "network", "register"]


def class_names(name: str) -> list[str]:
    """The class names of a network's `logits` layer, or a one-line StyleError if it has none."""
    _register_builtin()
    network = NETWORKS.get(name)
    if network is None or network.classes is None:
        with_heads = ", ".join(n for n, net in NETWORKS.items() if net.classes)
        raise StyleError(f"network {name!r} has no class head for --class; use one of {with_heads}")
    return network.classes()


def _register_builtin():
    from dreamer.networks import efficientnet_lite, hed, inceptionv3, mobilenetv2, trained, vgg16  # noqa: F401 - they register themselves

    trained.register_all(NETWORKS)  # and the networks `dreamer train` saved


def network(name: str) -> Network:
    """The registered network called `name` (built in or trained), or a one-line StyleError."""
    _register_builtin()
    if name not in NETWORKS:
        raise StyleError(f"unknown network {name!r}{closest(name, NETWORKS, '`dreamer styles` lists them')}")
    return NETWORKS[name]


def builtin_names() -> list[str]:
    """The names of the networks Dreamer ships."""
    _register_builtin()
    return sorted(name for name, net in NETWORKS.items() if not net.trained)


def all_styles() -> dict[str, Style]:
    """The zoo's styles and those of the networks `dreamer train` saved (NAME-mid, NAME-deep, NAME-class)."""
    from dreamer.networks import trained

    return {**STYLES, **{s.name: s for s in trained.styles() if s.name not in STYLES}}


def get_style(style: str | Style, **changes) -> Style:
    """The style to dream, resolved in this one place for the CLI, the gallery, the library and the server: `style`
    (a name: the zoo's or a trained network's; or a Style) with `changes` to its parameters (None leaves one as it
    is), checked. A painting given without a step size takes steps of PAINTING_STEP_SIZE at least (style.py says
    why); a class must be one the network knows. StyleError (one line) names the first problem."""
    base = style if isinstance(style, Style) else _named(style)
    changes = {key: value for key, value in changes.items() if value is not None}
    if not changes:
        return base.validated()
    if changes.get("style_image") and "step_size" not in changes:
        changes["step_size"] = max(base.step_size, PAINTING_STEP_SIZE)
    if changes.get("target_class") not in (None, ""):
        if not base.target_class:
            raise StyleError(f"style {base.name!r} has no class to change; pick a class style such as "
                             "effnet-lite0-class")
        from dreamer.engine.objectives import class_logit

        class_logit(str(changes["target_class"]), classes=class_names(base.network))  # an unknown class: one line
    return Style.from_dict({**base.to_dict(), **changes})


def _named(name) -> Style:
    """The style called `name`, or a one-line StyleError with the closest."""
    if not isinstance(name, str):
        raise StyleError(f"a style is a style's name or a Style, not {type(name).__name__}")
    styles = STYLES if name in STYLES else all_styles()
    try:
        return styles[name]
    except KeyError:
        raise StyleError(f"unknown style {name!r}{closest(name, styles, '`dreamer styles` lists them')}") from None


def fetch_weights(archive: str) -> Path:
    """Download, check and unpack `archive` (unless already fetched: dreamer.networks.fetch), then build its
    network once so that the converted Keras weights are cached. Returns the fetched folder."""
    from dreamer.networks.fetch import ARCHIVES, download

    target = download(archive)
    network(ARCHIVES[archive].network).build()
    return target


@functools.lru_cache(maxsize=4)
def load_network(name: str, precision: str = "float32"):
    """Build a network by registry name (or external source, see `external`) in `precision`."""
    from dreamer.engine.precision import dtype_policy
    from dreamer.networks import external

    _register_builtin()
    with dtype_policy(precision):
        if name in NETWORKS:
            return KerasNetwork(NETWORKS[name].build())
        if external.is_external(name):
            return external.load(name)
    built_in = sorted(n for n, net in NETWORKS.items() if not net.trained)
    hint = closest(name, NETWORKS, "built in: " + ", ".join(built_in))
    raise StyleError(f"unknown network {name!r}{hint}")
