"""Objectives with the real EfficientNet-Lite0: each one, optimised a few steps, raises its own value."""

import numpy as np
import pytest
import skimage.data
from keras import ops
from PIL import Image

from dreamer.engine import objectives
from dreamer.errors import StyleError
from dreamer.networks import load_network
from dreamer.engine.visualize import Recipe, visualize

FEW_STEPS = Recipe(steps=6, every=6, crops=2, crop_size=128)


def photo(size, source=skimage.data.chelsea):
    return np.asarray(Image.fromarray(source()).resize((size, size), Image.LANCZOS))


def unit(image):
    return ops.convert_to_tensor(image[None].astype(np.float32) / 127.5 - 1.0)


def extractor(objective):
    return load_network("effnet-lite0").extractor(sorted(objective.layers)) if objective.layers else None


def value(objective, image):
    return float(objectives.evaluate(objective, extractor(objective), unit(image))[0])


def optimised(objective, image):
    """The image after a few steps of the render loop raising `objective`, from the photo `image`."""
    return list(visualize(extractor(objective), objective, photo=image, recipe=FEW_STEPS))[-1]


def assert_raises(objective, image=None):
    image = photo(128) if image is None else image
    after = optimised(objective, image)
    assert value(objective, after) > value(objective, image) + 0.05 * abs(value(objective, image)), objective.name
    return after


def test_layer():
    assert_raises(objectives.layer("block5_project_bn"))


def test_channel():
    assert_raises(objectives.channel("block11_project_bn", 7))


def test_class_logit():
    assert_raises(objectives.class_logit("banana"))


def test_total_variation_falls_when_minimised():
    image = photo(128)
    after = assert_raises(-1.0 * objectives.total_variation(), image)
    assert value(objectives.total_variation(), after) < value(objectives.total_variation(), image)


def test_guide_moves_the_activations_toward_the_guide():
    name = "block11_project_bn"
    extract = load_network("effnet-lite0").extractor([name])
    guide_photo = photo(160, skimage.data.coffee)  # another size than the dreamed photo: averaged over space

    def mean_activation(image):
        return np.asarray(extract(unit(image))[name]).mean(axis=(0, 1, 2))

    def cosine(image):
        a, b = mean_activation(image), mean_activation(guide_photo)
        return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))

    image = photo(128)
    after = assert_raises(objectives.guide(guide_photo, name, extract), image)
    assert cosine(after) > cosine(image) + 0.02


def test_composed_objectives_read_like_maths():
    combined = 2.0 * objectives.class_logit(954) - objectives.total_variation()
    assert combined.name == "2 * class_logit('banana') + -1 * total_variation()"
    assert combined.layers == {"logits"}


def test_classes_by_name_or_index():
    assert objectives.class_logit("banana").name == objectives.class_logit(954).name == "class_logit('banana')"
    assert objectives.class_logit("Bell Pepper").name == objectives.class_logit("945").name


def test_unknown_class_is_one_line_with_suggestions():
    with pytest.raises(StyleError) as error:
        objectives.class_logit("bananna")
    message = str(error.value)
    assert "\n" not in message and "'bananna'" in message and "banana" in message.split("did you mean")[1]


def test_parsed_objective_is_the_composed_one():
    image = photo(96)
    text = "0.5 * layer('block5_project_bn') - 0.1 * total_variation() + channel('block11_project_bn', 7) * 2"
    parsed = objectives.parse(text)
    composed = (0.5 * objectives.layer("block5_project_bn") - 0.1 * objectives.total_variation()
                + 2 * objectives.channel("block11_project_bn", 7))
    assert parsed.layers == {"block5_project_bn", "block11_project_bn"}
    assert value(parsed, image) == pytest.approx(value(composed, image), rel=1e-5)
    assert_raises(objectives.parse("class_logit('banana') - 0.05 * total_variation()"))


@pytest.mark.parametrize("text", ["__import__('os').system('true')", "layer('a').fn", "layer('a') * layer('b')",
                                  "open('x')", "total_variation()", "layer(", "2 + 3"])
def test_parse_refuses_anything_else_on_one_line(text):
    with pytest.raises(StyleError) as info:
        objectives.parse(text)
    assert "\n" not in str(info.value) and "objective" in str(info.value)


def test_style_written_as_an_objective_dreams():
    from dreamer.engine import loop as engine
    from dreamer.dreaming import prepare, schedule_of
    from dreamer.style import Style

    style = Style.from_dict({"name": "maths", "network": "effnet-lite0", "octaves": 1, "steps": 6, "every": 3,
                             "step_size": 0.03, "precision": "float32",
                             "objective": "layer('block5_project_bn') - 0.1 * total_variation()"})
    extract, objective, stepper, _ = prepare(style)
    image = photo(96)
    frames = list(engine.dream(stepper, image, schedule_of(style)))
    assert len(frames) == 3
    assert engine.objective_value(extract, objective, frames[-1]) > engine.objective_value(extract, objective, image)
