"""EfficientNet-Lite0: the torch-free .pth reader, the conversion, its cache and the ImageNet ranks."""

import os
import pickle

import numpy as np
import pytest

from dreamer.errors import WeightsError
from dreamer.networks import NETWORKS
from dreamer.networks import efficientnet_lite as effnet
from dreamer.networks.torch_pickle import MAGIC_NUMBER, PROTOCOL_VERSION, read_torch_legacy

CATS = {281, 282, 283, 284, 285}


def photo(name):
    """A scikit-image photo resized to 224x224, RGB in [-1, 1], batch of one."""
    import skimage.data
    import skimage.transform

    image = skimage.transform.resize(getattr(skimage.data, name)(), (224, 224), anti_aliasing=True)
    return (image * 2 - 1)[None].astype("float32")


def top5(model, image):
    return list(np.argsort(-np.asarray(model(image))[0])[:5])


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A fresh DREAMER_CACHE for this module, so the first build converts the .pth."""
    with pytest.MonkeyPatch.context() as patch:
        path = tmp_path_factory.mktemp("cache")
        patch.setenv("DREAMER_CACHE", str(path))
        yield path


@pytest.fixture(scope="module")
def converted(cache):
    """The network built from the .pth, and its logits for chelsea and coffee."""
    assert not (cache / effnet.CACHE_NAME).exists()
    model = effnet.build_efficientnet_lite0()
    return model, {name: np.asarray(model(photo(name))) for name in ("chelsea", "coffee")}


def test_reader_reads_all_tensors_with_their_shapes():
    state = read_torch_legacy(effnet.pth_path())
    assert len(state) == 296
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_conv_stem.weight"].flags.c_contiguous  # stored channels-last: strides respected
    assert state["_blocks.3._depthwise_conv.weight"].shape == (144, 1, 5, 5)
    assert state["_blocks.15._project_conv.weight"].shape == (320, 1152, 1, 1)
    assert state["_fc.weight"].shape == (1000, 1280) and state["_fc.weight"].dtype == np.float32
    assert state["_bn1.num_batches_tracked"].dtype == np.int64


def test_reader_refuses_other_files(tmp_path):
    text = tmp_path / "notes.pth"
    text.write_text("not weights\n")
    with pytest.raises(WeightsError, match="not a legacy PyTorch"):
        read_torch_legacy(text)


def test_reader_refuses_arbitrary_globals(tmp_path):
    class Evil:
        def __reduce__(self):
            return os.system, ("echo pwned",)

    hostile = tmp_path / "hostile.pth"
    hostile.write_bytes(b"".join(pickle.dumps(obj, protocol=2) for obj in
                                 (MAGIC_NUMBER, PROTOCOL_VERSION, {"little_endian": True}, Evil())))
    with pytest.raises(WeightsError, match="refusing to unpickle"):
        read_torch_legacy(hostile)


def test_converted_network_recognises_the_photos(converted):
    model, logits = converted
    assert model.get_layer("logits").output.dtype == "float32"
    assert CATS & set(top5(model, photo("chelsea")))
    assert {967, 968} & set(np.argsort(-logits["coffee"][0])[:5])
    assert effnet.IMAGENET_CLASSES[967] == "espresso" and len(effnet.IMAGENET_CLASSES) == 1000


def test_layers_are_named_for_dreaming(converted):
    names = {layer.name for layer in converted[0].layers}
    assert {"stem_relu", "block0_dw_relu", "block1_expand_relu", "block2_add", "block15_project_bn",
            "head_relu", "avg_pool", "logits"} <= names
    assert "block0_expand_conv" not in names and "block1_add" not in names
    assert NETWORKS["effnet-lite0"].build is effnet.build_efficientnet_lite0


def test_second_build_reads_the_cache(converted, cache, monkeypatch):
    assert (cache / effnet.CACHE_NAME).exists()
    monkeypatch.setattr(effnet, "read_torch_legacy", lambda path: pytest.fail("read the .pth again"))
    model = effnet.build_efficientnet_lite0()
    for name, logits in converted[1].items():
        np.testing.assert_array_equal(np.asarray(model(photo(name))), logits)


def test_mixed_bfloat16_keeps_float32_logits(converted):
    from dreamer.engine.precision import dtype_policy

    with dtype_policy("bfloat16"):
        model = effnet.build_efficientnet_lite0()
    logits = model(photo("chelsea"))
    assert logits.dtype == "float32"
    assert CATS & set(np.argsort(-np.asarray(logits)[0])[:5])
