"""Static into classes: the visualisation recipe, its parameterisation and transforms, with real weights.

The class check is what a person's eye does and adversarial noise fails: the class must be in the
network's top 5 on the result downscaled to 224 px and slightly blurred.
"""

import numpy as np
import pytest
import skimage.data
from keras import ops
from PIL import Image, ImageFilter

from dreamer.engine import objectives
from dreamer.engine import parameterization
from dreamer.engine import transforms
from dreamer.cli import main
from dreamer.engine.steppers import parameter_gradient
from dreamer.media.images import noise_image
from dreamer.networks import load_network
from dreamer.engine.visualize import Recipe, recipe_for, stretch, visualize

QUICK = recipe_for(80, every=40)  # the recipe at test size: 224 px, 80 steps instead of 250


def network():
    return load_network("effnet-lite0")


def top5_as_a_person_sees_it(image):
    """The network's top-5 classes for `image` downscaled to 224 px and blurred (radius 1)."""
    small = Image.fromarray(image).resize((224, 224), Image.LANCZOS).filter(ImageFilter.GaussianBlur(1))
    logits = np.asarray(network().model(np.asarray(small, np.float32)[None] / 127.5 - 1.0))[0]
    return list(np.argsort(-logits)[:5])


def class_from_static(index, recipe=QUICK, size=(224, 224)):
    objective = objectives.class_logit(index)
    return list(visualize(network().extractor(["logits"]), objective, size, recipe=recipe))


@pytest.mark.parametrize("index", [954, 309], ids=["banana", "bee"])
def test_static_into_a_class_that_survives_blur(index):
    assert index in top5_as_a_person_sees_it(class_from_static(index)[-1])


def test_raw_pixel_ascent_fools_the_network_but_not_the_check():
    """Without the parameterisation and transforms, the class is adversarial noise: the check fails."""
    objective = objectives.class_logit(954)
    extract = network().extractor(["logits"])
    step = parameter_gradient(lambda images: ops.sum(objectives.evaluate(objective, extract, images)))
    images = ops.convert_to_tensor(noise_image(224, 224)[None] / 127.5 - 1.0, "float32")
    for _ in range(30):
        gradient, _ = step(images)
        images = ops.clip(images + 0.01 * gradient / (ops.std(gradient) + 1e-8), -1.0, 1.0)
    image = np.clip(np.round((np.asarray(images[0]) + 1.0) * 127.5), 0, 255).astype(np.uint8)
    logits = np.asarray(network().model(image[None].astype(np.float32) / 127.5 - 1.0))[0]
    assert np.argmax(logits) == 954  # the network sees a banana...
    assert 954 not in top5_as_a_person_sees_it(image)  # ...that is gone when blurred


def test_frames_count_size_and_the_first_is_the_static():
    recipe = Recipe(steps=5, every=2, crops=2, crop_size=64, contrast=True)
    frames = class_from_static(954, recipe, size=(48, 80))
    assert len(frames) == recipe.frame_count == 4  # the static, steps 2 and 4, the last
    assert all(f.shape == (48, 80, 3) and f.dtype == np.uint8 for f in frames)
    assert np.array_equal(frames[0], noise_image(48, 80))


def test_a_photo_starts_as_itself_and_changes():
    photo = np.asarray(Image.fromarray(skimage.data.chelsea()).resize((64, 48)))
    frames = list(visualize(network().extractor(["logits"]), objectives.class_logit("banana"), photo=photo,
                            recipe=Recipe(steps=3, every=3, crops=1, crop_size=64)))
    assert np.array_equal(frames[0], photo)
    assert np.abs(frames[-1].astype(int) - photo).mean() > 1


def test_spectrum_round_trip_is_exact():
    image = np.random.default_rng(0).uniform(0.01, 0.99, (37, 50, 3))
    back = parameterization.to_image(ops.convert_to_tensor(parameterization.from_image(image)), 37, 50)
    assert np.abs(np.asarray(back) - image).max() < 1e-5


def test_crop_takes_the_drawn_square_and_compose_splits_the_draws():
    image = skimage.data.astronaut()[:400, :500]
    u = np.array([[0.0, 0.5, 0.25, 0.5]], np.float32)  # side 35 % of 400 = 140, top 130, left 90; no rotation
    chain = transforms.compose(transforms.crop(size=210), transforms.rotate(10))
    assert chain.draws == 4
    out = np.asarray(chain(ops.convert_to_tensor(image[None] / 255.0, "float32"), u))[0]
    expected = np.asarray(Image.fromarray(image).crop((90, 130, 230, 270)).resize((210, 210), Image.BILINEAR)) / 255
    assert out.shape == (210, 210, 3) and np.abs(out - expected)[2:-2, 2:-2].mean() < 0.005


def test_crop_samples_the_image_as_scale_and_translate_does():
    """The crop's gathers give what Keras's resampling op gives (linear, no antialias), edges included."""
    images = ops.convert_to_tensor(np.random.default_rng(0).uniform(-1, 1, (5, 90, 131, 3)), "float32")
    uniforms = np.concatenate([np.random.default_rng(1).uniform(size=(3, 3)), [[0, 0, 0], [1, 1, 1]]]).astype("f4")
    out = np.asarray(transforms.crop(size=64)(images, ops.convert_to_tensor(uniforms)))
    for i, (u_side, u_top, u_left) in enumerate(uniforms):
        side = (0.35 + 0.65 * u_side) * 90
        scale, top, left = 64 / side, u_top * (90 - side), u_left * (131 - side)
        expected = ops.image.scale_and_translate(images[i:i + 1], (1, 64, 64, 3), [scale, scale],
                                                 [-top * scale, -left * scale], (1, 2), "linear", antialias=False)
        assert np.abs(out[i] - np.asarray(expected)[0]).max() < 2e-4, i


def test_a_shorter_recipe_keeps_the_total_decay():
    assert recipe_for(250) == Recipe()
    short = recipe_for(80)
    assert short.decay_steps == 38 and short.decay ** short.decay_steps == pytest.approx(0.98 ** 120)


def test_stretch_spreads_the_range():
    dull = np.linspace(100, 150, 300, dtype=np.uint8).reshape(10, 10, 3)
    assert stretch(dull).min() <= 3 and stretch(dull).max() >= 252


def test_cli_noise_to_a_class(tmp_path):
    out = tmp_path / "static.gif"
    assert main(["render", "noise:48x32", "--class", "bee", "--steps", "2", "--every", "1", "-o", str(out)]) == 0
    with Image.open(out) as gif:
        assert (gif.n_frames, gif.size) == (3, (48, 32))


def test_cli_unknown_class_fails_on_one_line(capsys):
    assert main(["render", "noise", "--class", "bananna"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "did you mean banana" in err


def test_cli_class_needs_a_class_style(capsys):
    assert main(["render", "noise", "--class", "banana", "--style", "vgg16-eyes"]) == 2
    assert "effnet-lite0-class" in capsys.readouterr().err
