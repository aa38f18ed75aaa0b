"""Objectives: functions of a network's activations to one score per image, composable like maths.

`0.5 * layer("block4_conv3") + layer("block5_conv2", channels=[7])` reads as it computes, and so does
`class_logit("banana") - 0.1 * total_variation()`. The activations are a dict {layer name: (B, H, W, C)};
`evaluate` adds the network's input images under INPUT, for objectives of the image itself.
"""

import ast
from dataclasses import dataclass
from typing import Callable

from dreamer.errors import StyleError, closest
from dreamer.media.images import to_unit_range

INPUT = "input"  # the key of the network's input images (B, H, W, 3) in [-1, 1] among the activations


@dataclass(frozen=True)
class Objective:
    """Maps {layer: activations (B, H, W, C) or (B, C)} to a float32 score per image, shape (B,)."""

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


def weighted_sum(terms) -> Objective:
    """The sum of some objectives (at least one)."""
    total, *rest = terms
    for term in rest:
        total = total + term
    return total


def from_style_parts(layers: dict, channels: dict) -> Objective:
    """The weighted sum of layer objectives that a zoo style describes: {layer: weight}, {layer: channels}."""
    return weighted_sum(weight * layer(name, channels.get(name)) for name, weight in layers.items())


def from_guide(image, layers: dict, extract) -> Objective:
    """A style's layers ({layer: weight}) each scored by `guide` toward the photo `image` (uint8)."""
    return weighted_sum(weight * guide(image, name, extract) for name, weight in layers.items())


def evaluate(objective: Objective, extract, images):
    """The objective's scores (B,) for `images`: the extractor's activations plus the images under INPUT.

    An objective of the images alone (no layers) needs no network: `extract` may then be None."""
    return objective({**(extract(images) if objective.layers else {}), INPUT: images})


def channel(name: str, k: int) -> Objective:
    """The mean activation of channel `k` of a layer."""
    return Objective(layer(name, [k]).fn, frozenset([name]), f"channel({name!r}, {k})")


def class_index(name_or_index, classes) -> int:
    """The index of a class given by name (case and spaces ignored) or index, or a one-line StyleError.

    A name that two classes share (ImageNet's "crane", "maillot") means the first; use the index for the other.
    """
    text = str(name_or_index).strip()
    if text.isdigit() and int(text) < len(classes):
        return int(text)
    key = text.lower().replace(" ", "_").replace("-", "_")
    names = [c.lower() for c in classes]
    if key in names:
        return names.index(key)
    hint = closest(key, names, f"give a name or an index 0-{len(classes) - 1}")
    raise StyleError(f"unknown class {text!r}{hint}")


def class_logit(name_or_index, classes=None, logits: str = "logits") -> Objective:
    """The logit of one class in the network's `logits` layer (by default EfficientNet-Lite0's ImageNet head)."""
    from keras import ops

    if classes is None:
        from dreamer.networks.efficientnet_lite import IMAGENET_CLASSES as classes
    index = class_index(name_or_index, classes)

    def fn(activations):
        return ops.cast(activations[logits][:, index], "float32")

    return Objective(fn, frozenset([logits]), f"class_logit({classes[index]!r})")


def guide(image, name: str, extract) -> Objective:
    """How far a layer's activations point the way a guide photo's do: dream toward that photo.

    `image` is the guide (uint8 H x W x 3), `extract` maps images to activations (with `name`). Its
    activations are computed once, here, and averaged over space to one vector per channel, so the
    guide and the dreamed image may differ in size. The score is the dot product of the dreamed
    image's spatially averaged activations with that vector scaled to unit length.
    """
    from keras import ops

    guide_images = ops.convert_to_tensor(to_unit_range(image[None]))
    target = ops.mean(ops.cast(extract(guide_images)[name], "float32"), axis=(1, 2))[0]
    target = target / ops.maximum(ops.norm(target), 1e-12)

    def fn(activations):
        return ops.sum(ops.mean(ops.cast(activations[name], "float32"), axis=(1, 2)) * target, axis=-1)

    return Objective(fn, frozenset([name]), f"guide({name!r})")


# Gatys et al.'s layers for VGG16; other networks use their style's own layers
VGG16_STYLE_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")


def gram(activations):
    """The Gram matrices (B, C, C) of activations (B, H, W, C): channel correlations averaged over positions."""
    from keras import ops

    act = ops.cast(activations, "float32")
    channels = act.shape[-1]
    flat = ops.reshape(act, (ops.shape(act)[0], -1, channels))
    return ops.einsum("bpc,bpd->bcd", flat, flat) / ops.cast(ops.shape(flat)[1], "float32")


def style_image(image, layers, extract) -> Objective:
    """How close the dream's textures are to a painting's (Gatys et al.): minus the mean over `layers` of the
    squared distance between the dream's Gram matrices and the painting's, each divided by the painting's squared
    norm so that every layer counts alike (0 is the painting's own textures). `image` is the painting (uint8) at
    the dream's scale; `extract` maps images to activations with `layers`. Through tiles, each tile is scored
    and the scores add up, as for every objective."""
    from keras import ops

    painting = extract(ops.convert_to_tensor(to_unit_range(image[None])))
    targets = {name: gram(painting[name])[0] for name in layers}
    scales = {name: 1.0 / ops.maximum(ops.sum(target * target), 1e-12) for name, target in targets.items()}

    def fn(activations):
        distances = [ops.sum((gram(activations[name]) - targets[name]) ** 2, axis=(1, 2)) * scales[name]
                     for name in layers]
        return -sum(distances) / len(layers)

    return Objective(fn, frozenset(layers), f"style_image({len(layers)} layers)")


def total_variation() -> Objective:
    """The mean absolute difference between neighbouring pixels of the input image: subtract a little
    of it (`- 0.05 * total_variation()`) to smooth a dream."""
    from keras import ops

    def fn(activations):
        images = activations[INPUT]
        dy = ops.mean(ops.abs(images[:, 1:] - images[:, :-1]), axis=(1, 2, 3))
        dx = ops.mean(ops.abs(images[:, :, 1:] - images[:, :, :-1]), axis=(1, 2, 3))
        return dy + dx

    return Objective(fn, frozenset(), "total_variation()")


def parse(text: str, classes=None) -> Objective:
    """An objective written as maths, e.g. "layer('mixed3') + 0.5 * channel('mixed5', 7) - 0.1 *
    total_variation()" (gallery.toml's `objective`), built without eval: only the factories above,
    numbers, strings, +, - and * are allowed. `classes` names the network's `logits` for class_logit."""
    factories = {"layer": layer, "channel": channel, "total_variation": total_variation,
                 "class_logit": lambda name: class_logit(name, classes=classes)}

    def fail(node):
        raise StyleError(f"objective {text!r}: {ast.unparse(node)!r} is not allowed; write it with "
                         f"{', '.join(f'{name}()' for name in factories)}, numbers, +, - and *")

    def build(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str)):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -build(node.operand)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in factories \
                and not node.keywords:
            return factories[node.func.id](*[build(arg) for arg in node.args])
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult)):
            left, right = build(node.left), build(node.right)
            numbers = [isinstance(side, (int, float)) and not isinstance(side, bool) for side in (left, right)]
            if isinstance(node.op, ast.Mult) and sum(numbers) == 1 and Objective in (type(left), type(right)):
                return left * right
            both = isinstance(left, Objective) and isinstance(right, Objective)
            if both and isinstance(node.op, ast.Add):
                return left + right
            if both and isinstance(node.op, ast.Sub):
                return left - right
        fail(node)

    tree = check(text)
    objective = build(tree.body)
    if not isinstance(objective, Objective):
        fail(tree.body)
    if not objective.layers:
        raise StyleError(f"objective {text!r} needs at least one layer, channel or class_logit term")
    return objective


MAX_LENGTH = 2000  # characters of an objective written as maths
MAX_DEPTH = 100  # how deeply its syntax tree nests: each +, -, * or call in a chain is a level


def check(text) -> ast.Expression:
    """The syntax tree of an objective written as maths, or a one-line StyleError when it is not a string, is
    longer than MAX_LENGTH, is not an expression or nests deeper than MAX_DEPTH. Needs no network (gallery.toml's
    objectives are checked as it loads) and never recurses on the text's depth."""
    if not isinstance(text, str):
        raise StyleError(f"objective must be a string such as \"layer('block4_conv3')\", got {text!r}")
    if len(text) > MAX_LENGTH:
        raise StyleError(f"objective is {len(text):,} characters long, over the limit of {MAX_LENGTH:,}; shorten it")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise StyleError(f"objective {text!r} is not an expression ({exc.msg}); "
                         "e.g. \"layer('block4_conv3')\"") from None
    except (RecursionError, MemoryError):  # the parser's own limits on nesting
        tree = None
    if tree is None or _depth(tree) > MAX_DEPTH:
        raise StyleError(f"objective nests deeper than the limit of {MAX_DEPTH} levels; write it flatter")
    return tree


def _depth(tree: ast.AST) -> int:
    """How many levels of nodes a syntax tree has, counted with a stack rather than recursion."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest
