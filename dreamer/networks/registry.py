"""The registry of networks: what a network is (Network), a loaded one (KerasNetwork) and the table they are kept in.
A leaf: the network modules import it to register themselves; dreamer.networks gathers them."""

import functools
from dataclasses import dataclass
from typing import Callable

from dreamer.errors import StyleError, closest


@dataclass(frozen=True)
class Network:
    """A registry entry: how to build one network and where its weights come from."""

    name: str
    summary: str
    weights: str
    build: Callable[[], "keras.Model"]  # noqa: F821 - a flat functional model, input in [-1, 1]
    classes: Callable[[], list[str]] | None = None  # the names of its `logits` layer, if it has a head
    trained: bool = False  # fine-tuned by `dreamer train` (networks/trained.py), not built in


class KerasNetwork:
    """A loaded Keras model whose named layers can be dreamed on."""

    def __init__(self, model):
        self.model = model

    def layer_names(self) -> list[str]:
        """Every layer name except the input."""
        return [layer.name for layer in self.model.layers if layer.__class__.__name__ != "InputLayer"]

    def layer_shapes(self) -> list[tuple[str, tuple]]:
        """(name, output shape) of every layer except the input."""
        return [(layer.name, tuple(layer.output.shape)) for layer in self.model.layers
                if layer.__class__.__name__ != "InputLayer"]

    def extractor(self, layers):
        """A callable mapping images to {layer name: activations} for `layers`: through the model with its batch
        norms folded into their convolutions (`folding`), unless a layer wanted is one of those convolutions."""
        import keras

        check_layers(self.layer_names(), layers)
        if self._folded is not None and all(name in self._folded[1] for name in layers):
            image, outputs = self._folded
            return keras.Model(image, {name: outputs[name] for name in layers})
        return keras.Model(self.model.input, {name: self.model.get_layer(name).output for name in layers})

    @functools.cached_property
    def _folded(self):
        from dreamer.networks.folding import fold

        return fold(self.model)


def check_layers(known: list[str], wanted) -> None:
    """Raise a one-line StyleError naming an unknown layer and the closest known ones."""
    for name in wanted:
        if name not in known:
            hint = closest(name, known, "`dreamer layers NETWORK` lists them")
            raise StyleError(f"layer {name!r} is not in this network{hint}")


NETWORKS: dict[str, Network] = {}


def register(network: Network) -> Network:
    """Add a network to the registry."""
    NETWORKS[network.name] = network
    return network
