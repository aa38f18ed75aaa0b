"""Batch norms folded into their convolutions: the real networks' every layer and gradient unchanged."""

import keras
import numpy as np
import pytest
import skimage.data
from keras import ops

from dreamer.engine.steppers import parameter_gradient
from dreamer.media.images import resize_to_long_side
from dreamer.networks import load_network
from dreamer.networks.folding import fold, foldable_pairs


def batch_norms(model) -> list[str]:
    return [layer.name for layer in model.layers if type(layer).__name__ == "BatchNormalization"]


def photo_batch(side=96):
    image = resize_to_long_side(skimage.data.astronaut(), side)
    return ops.convert_to_tensor(image[None] / 127.5 - 1.0, "float32")


@pytest.mark.parametrize("name, count", [("effnet-lite0", 49), ("mobilenetv2", 52), ("inceptionv3", 94)])
def test_every_batch_norm_folds_and_every_layer_keeps_its_activations(name, count):
    model = load_network(name).model
    assert len(foldable_pairs(model)) == len(batch_norms(model)) == count
    image, outputs = fold(model)
    names = [layer.name for layer in model.layers if layer.name in outputs]
    assert len(names) == len(model.layers) - count - 1  # all but the pre-BN convolutions and the input
    plain = keras.Model(model.input, {n: model.get_layer(n).output for n in names})(photo_batch())
    folded = keras.Model(image, {n: outputs[n] for n in names})(photo_batch())
    for n in names:
        a, b = np.asarray(plain[n]), np.asarray(folded[n])
        assert np.abs(a - b).max() <= 1e-4 * (np.abs(a).max() + 1e-3), n


@pytest.mark.parametrize("name, layer", [("effnet-lite0", "block5_project_bn"), ("mobilenetv2", "block_13_expand_relu"),
                                         ("inceptionv3", "mixed5")])
def test_the_extractor_dreams_through_the_folded_graph_with_the_same_gradient(name, layer):
    network = load_network(name)
    extract = network.extractor([layer])
    assert not batch_norms(extract)
    plain = keras.Model(network.model.input, {layer: network.model.get_layer(layer).output})

    def gradient(extractor):
        step = parameter_gradient(lambda images: ops.mean(extractor(images)[layer]))
        return np.asarray(step(photo_batch())[0])

    ours, reference = gradient(extract), gradient(plain)
    # units at ReLU6's edges switch on rounding: MobileNetV2's gradient here moves 0.6 % (L2) when the photo moves
    # by 1e-6, and 1.8 % when its batch norms fold; a wrong scale or shift would move it wholesale
    assert np.linalg.norm(ours - reference) <= 0.05 * np.linalg.norm(reference)


def test_a_pre_batch_norm_convolution_is_still_there_to_dream_on():
    network = load_network("effnet-lite0")
    extract = network.extractor(["block5_dw_conv", "block5_project_bn"])
    assert len(batch_norms(extract)) >= 1 and "block5_dw_conv" in extract.output


def test_a_convolution_with_a_bias_and_a_depthwise_multiplier_fold_exactly():
    image = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(6, 3, padding="same", use_bias=True, name="conv")(image)
    x = keras.layers.BatchNormalization(center=False, epsilon=0.01, name="bn")(x)
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, name="dw")(x)
    x = keras.layers.BatchNormalization(scale=True, name="dw_bn")(x)
    model = keras.Model(image, keras.layers.ReLU(name="relu")(x))
    rng = np.random.default_rng(0)
    for layer in model.layers[1:]:
        layer.set_weights([rng.uniform(0.5, 1.5, w.shape) if "variance" in w.path else rng.normal(size=w.shape)
                           for w in layer.weights])
    assert set(foldable_pairs(model)) == {"bn", "dw_bn"}
    new_image, outputs = fold(model)
    photo = ops.convert_to_tensor(rng.uniform(-1, 1, (2, 20, 24, 3)), "float32")
    expected = keras.Model(model.input, {n: model.get_layer(n).output for n in ("bn", "dw_bn", "relu")})(photo)
    got = keras.Model(new_image, {n: outputs[n] for n in ("bn", "dw_bn", "relu")})(photo)
    for name in expected:
        np.testing.assert_allclose(np.asarray(got[name]), np.asarray(expected[name]), rtol=1e-4, atol=1e-4)
    assert "conv" not in outputs and "dw" not in outputs


def test_layers_without_a_convolution_before_them_stay():
    image = keras.Input((None, None, 3))
    conv = keras.layers.Conv2D(4, 3, activation="relu", name="conv_relu")(image)  # an activation: cannot fold
    after_relu = keras.layers.BatchNormalization(name="bn_after_relu")(conv)
    plain = keras.layers.Conv2D(4, 3, name="conv")(after_relu)
    read_twice = keras.layers.BatchNormalization(name="bn_of_shared")(plain)
    model = keras.Model(image, [read_twice, plain])  # `plain` is also an output: its BN cannot fold
    assert foldable_pairs(model) == {}
    assert fold(model) is None
    assert fold(keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3),
                                  keras.layers.BatchNormalization()])) is None
