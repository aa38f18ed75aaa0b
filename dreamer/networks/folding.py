"""Batch normalisation folded into the convolution before it, for dreaming: the same function of the image
without BN's own passes over every activation (its scale and shift, forward and backward).

A BatchNormalization layer folds when its only input is a Conv2D's or DepthwiseConv2D's output (channels
last, no activation) that nothing else reads: the convolution's kernel is scaled per output channel and given
the bias that BN's shift becomes. The folded convolution takes the BN layer's name, so a layer named in a
style still means the same activations; the convolution's own (pre-BN) output is what the folded graph lacks.
"""

from collections import Counter

import numpy as np

CONVOLUTIONS = ("Conv2D", "DepthwiseConv2D")


def foldable_pairs(model) -> dict[str, object]:
    """BatchNormalization layer name -> the convolution layer it folds into, for each BN of `model` that can."""
    nodes = [node for level in model._nodes_by_depth.values() for node in level]  # the model's layer calls
    calls = Counter(node.operation.name for node in nodes)
    readers = Counter(id(tensor) for node in nodes for tensor in node.input_tensors)
    readers.update(id(tensor) for tensor in model.outputs)
    pairs = {}
    for node in nodes:
        layer = node.operation
        if type(layer).__name__ != "BatchNormalization" or calls[layer.name] != 1 or len(node.input_tensors) != 1:
            continue
        (source,) = node.input_tensors
        conv = source._keras_history.operation
        if type(conv).__name__ not in CONVOLUTIONS:
            continue
        config = conv.get_config()
        if (calls[conv.name] == 1 and readers[id(source)] == 1 and config.get("activation") == "linear"
                and config.get("data_format") == "channels_last" and layer.axis in (-1, len(source.shape) - 1)):
            pairs[layer.name] = conv
    return pairs


def folded_convolution(conv, batch_norm):
    """A new convolution computing `batch_norm(conv(x))` (inference statistics), named as `batch_norm`."""
    folded = type(conv).from_config(dict(conv.get_config(), name=batch_norm.name, use_bias=True))
    folded.build(tuple(conv.input.shape))
    scale = 1.0 / np.sqrt(np.asarray(batch_norm.moving_variance, np.float64) + batch_norm.epsilon)
    if batch_norm.scale:
        scale *= np.asarray(batch_norm.gamma, np.float64)
    bias = np.asarray(conv.bias, np.float64) if conv.use_bias else 0.0
    shift = (bias - np.asarray(batch_norm.moving_mean, np.float64)) * scale
    if batch_norm.center:
        shift += np.asarray(batch_norm.beta, np.float64)
    kernel = np.asarray(conv.kernel, np.float64)
    # Conv2D's kernel is (h, w, in, out); DepthwiseConv2D's (h, w, in, multiplier), output channel in * m + j
    factor = scale.reshape(kernel.shape[2:]) if type(conv).__name__ == "DepthwiseConv2D" else scale
    folded.set_weights([(kernel * factor).astype(np.float32), shift.astype(np.float32)])
    return folded


def fold(model):
    """(the new input, {layer name: its output}) of `model` rebuilt with its batch norms folded, or None when
    none folds. The other layers are `model`'s own (weights shared); a folded convolution's name is absent."""
    import keras

    if type(model).__name__ != "Functional":  # a Sequential or subclassed model: no graph of calls to rebuild
        return None
    pairs = foldable_pairs(model)
    if not pairs:
        return None
    convs = {conv.name: folded_convolution(conv, model.get_layer(name)) for name, conv in pairs.items()}
    outputs = {}

    def call(layer, *args, **kwargs):
        if layer.name in pairs:  # the folded convolution before it applied it
            return args[0]
        layer = convs.get(layer.name, layer)  # a folded convolution has its batch norm's name
        outputs[layer.name] = layer(*args, **kwargs)
        return outputs[layer.name]

    clone = keras.models.clone_model(model, clone_function=lambda layer: layer, call_function=call)
    return clone.input, outputs
