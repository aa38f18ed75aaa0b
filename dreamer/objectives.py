"""Objectives: functions of a network's activations to one score per image, composable like maths.

`0.5 * layer("block4_conv3") + layer("block5_conv2", channels=[7])` reads as it computes.
"""

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Objective:
    """Maps {layer: activations (B, H, W, C)} to a float32 score per image, shape (B,)."""

    fn: Callable
    layers: frozenset
    name: str

    def __call__(self, activations):
        return self.fn(activations)

    def __add__(self, other):
        return Objective(lambda a: self(a) + other(a), self.layers | other.layers, f"{self.name} + {other.name}")

    def __sub__(self, other):
        return self + (-1.0) * other

    def __mul__(self, weight: float):
        return Objective(lambda a: weight * self(a), self.layers, f"{weight:g} * {self.name}")

    __rmul__ = __mul__

    def __neg__(self):
        return -1.0 * self


def layer(name: str, channels=None) -> Objective:
    """DeepDream's objective: the mean activation of a layer (optionally of some channels only)."""
    import keras

    def fn(activations):
        act = keras.ops.cast(activations[name], "float32")
        if channels:
            act = keras.ops.take(act, list(channels), axis=-1)
        return keras.ops.mean(act, axis=tuple(range(1, len(act.shape))))

    label = f"layer({name!r}" + (f", channels={list(channels)})" if channels else ")")
    return Objective(fn, frozenset([name]), label)


def from_style_parts(layers: dict, channels: dict) -> Objective:
    """The weighted sum of layer objectives that a zoo style describes: {layer: weight}, {layer: channels}."""
    terms = [weight * layer(name, channels.get(name)) for name, weight in layers.items()]
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total
