"""The dream engine with real VGG16 weights (HED's trunk), on small images to stay fast."""

import numpy as np
import pytest
import skimage.data
from PIL import Image

from dreamer.engine import loop as engine
from dreamer.dreaming import prepare, schedule_of
from dreamer.engine.tiles import tile_starts
from dreamer.networks import get_style

STYLE = get_style("vgg16-eyes").replace(octaves=2, steps=10, every=5, step_size=0.03, precision="float32")


def photo(size, source=skimage.data.astronaut):
    return np.asarray(Image.fromarray(source()).resize((size, size), Image.LANCZOS))


def run(style, image, seed=0):
    step = prepare(style).stepper
    return list(engine.dream(step, image, schedule_of(style), seed=seed))


def gain(style, before, after):
    extract, objective, _, _ = prepare(style)
    return engine.objective_value(extract, objective, after) / engine.objective_value(extract, objective, before)


def test_dream_raises_the_objective_many_times():
    image = photo(128)
    frames = run(STYLE, image)
    assert gain(STYLE, image, frames[-1]) > 3.0
    # and it rises along the way: the middle frame is already past the original
    assert 1.0 < gain(STYLE, image, frames[len(frames) // 2]) < gain(STYLE, image, frames[-1])


def test_frame_count_size_first_and_last():
    image = photo(96)[:, :80]  # not square
    style = STYLE.replace(steps=5, every=2)  # 10 steps, a frame every 2: 5 frames + the original
    frames = run(style, image)
    assert len(frames) == schedule_of(style).frame_count == 6
    assert all(f.shape == (96, 80, 3) and f.dtype == np.uint8 for f in frames)
    assert np.array_equal(frames[0], image)
    assert np.abs(frames[-1].astype(int) - image).mean() > 5  # the last frame is the dream, not the photo


def test_frame_count_when_steps_do_not_divide():
    style = STYLE.replace(octaves=1, steps=7, every=3)  # frames after steps 3, 6 and the final 7
    assert len(run(style, photo(64))) == schedule_of(style).frame_count == 4


def test_frames_are_read_after_the_next_steps_are_queued():
    """The host takes a frame (and a score) only once the next call is on its way, so an accelerator keeps
    working while the host converts and hands out frames."""
    stepper = prepare(STYLE).stepper
    events = []

    class Recorded:
        whole_octaves = stepper.whole_octaves

        def advance(self, *args, **kwargs):
            events.append("advance")
            return stepper.advance(*args, **kwargs)

    style = STYLE.replace(steps=4, every=2)  # 2 octaves x 2 calls, a frame after each
    for _ in engine.dream(Recorded(), photo(64), schedule_of(style), on_step=lambda *_: events.append("score")):
        events.append("frame")
    assert events == ["frame", "advance", "advance", "score", "frame", "advance", "score", "frame",
                      "advance", "score", "frame", "score", "frame"]


def test_same_seed_same_frames_other_seed_other_frames():
    image = photo(96)
    first, again, other = run(STYLE, image, seed=5), run(STYLE, image, seed=5), run(STYLE, image, seed=6)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[-1], other[-1])


def test_tiled_and_untiled_reach_a_similar_gain():
    image = photo(160)
    untiled = STYLE.replace(tile_size=512)
    tiled = STYLE.replace(tile_size=64)  # 160 px at full size: 3 x 3 tiles, the last ones overlapping
    gain_untiled = gain(untiled, image, run(untiled, image)[-1])
    gain_tiled = gain(untiled, image, run(tiled, image)[-1])
    assert gain_tiled > 3.0
    assert gain_tiled == pytest.approx(gain_untiled, rel=0.3)


def test_step_is_traced_once_across_octaves_and_sizes():
    style = STYLE.replace(octaves=3, steps=1, every=1, layers={"block3_conv3": 1.0})
    step = prepare(style).stepper
    before = step.traces
    for size in (64, 90):
        run(style, photo(size))
    run(style.replace(tile_size=64), photo(130))  # tiles, and a batch of a different shape
    assert step.traces - before <= 1


def test_keep_colors_keeps_the_photo_chroma():
    image = photo(96, skimage.data.coffee)
    plain, kept = run(STYLE, image)[-1], run(STYLE.replace(keep_colors=True), image)[-1]

    def chroma(rgb):
        return np.asarray(Image.fromarray(rgb).convert("YCbCr"), dtype=float)[..., 1:]

    assert np.abs(chroma(kept) - chroma(image)).mean() < 2.0
    assert np.abs(chroma(plain) - chroma(image)).mean() > 2 * np.abs(chroma(kept) - chroma(image)).mean()


def test_tile_starts_cover_the_length_with_full_tiles():
    assert tile_starts(100, 512) == [0]
    assert tile_starts(1000, 512) == [0, 488]
    assert tile_starts(1024, 512) == [0, 512]
    assert tile_starts(1030, 512) == [0, 512, 518]


def test_bfloat16_reaches_the_float32_gain():
    image = photo(128)
    gains = [gain(STYLE, image, run(STYLE.replace(precision=p), image)[-1]) for p in ("float32", "bfloat16")]
    assert gains[0] > 3.0
    assert gains[1] == pytest.approx(gains[0], rel=0.10)


def test_batched_tiles_give_the_unbatched_frames():
    image = photo(160)
    style = STYLE.replace(tile_size=64, octaves=1, steps=3, every=1)
    stepper = prepare(style).stepper
    one = list(engine.dream(stepper, image, schedule_of(style), seed=2, batch=1))
    four = list(engine.dream(stepper, image, schedule_of(style), seed=2, batch=4))
    assert len(one) == len(four) == 4
    for a, b in zip(one, four):
        assert np.abs(a.astype(int) - b).max() <= 2


def test_zoom_frames_count_size_and_zoom():
    image = photo(96)
    style = STYLE.replace(octaves=1, steps=6, every=2)
    stepper = prepare(style).stepper
    frames = list(engine.zoom_dream(stepper, image, schedule_of(style), 1.2, seed=1))
    assert len(frames) == schedule_of(style).frame_count == 4
    assert all(f.shape == image.shape for f in frames)
    # each frame is a zoom of the one before, plus a little dreaming: closer to the zoomed previous frame
    zoomed = engine.to_uint8(engine.zoom_into(frames[1].astype(np.float32) / 127.5 - 1, 1.2))
    assert np.abs(frames[2].astype(int) - zoomed).mean() < np.abs(frames[2].astype(int) - frames[1]).mean()


def test_lapnorm_dreams_with_less_pixel_noise():
    image = photo(128)
    plain, lap = STYLE, STYLE.replace(lapnorm=True)
    plain_frame, lap_frame = run(plain, image)[-1], run(lap, image)[-1]
    assert gain(plain, image, lap_frame) > 3.0

    def pixel_noise(frame):  # energy of the change in the finest band: neighbour differences
        change = frame.astype(float) - image
        return np.abs(np.diff(change, axis=0)).mean() + np.abs(np.diff(change, axis=1)).mean()

    assert pixel_noise(lap_frame) < 0.85 * pixel_noise(plain_frame)


def test_dreaming_images_together_gives_each_its_own_frames():
    # the middle one of another size: it takes its steps apart from the others, and its frames stay in order
    images = [photo(96), photo(96, skimage.data.coffee)[:80], photo(96, skimage.data.chelsea)]
    style = STYLE.replace(octaves=2, steps=3, every=3, tile_size=64, lapnorm=True)  # 96 px: 4 tiles an image
    stepper = prepare(style).stepper
    together = list(engine.dream_batch(stepper, images, schedule_of(style), seeds=[3, 4, 5], batch=6))
    assert len(together) == schedule_of(style).frame_count
    for i, (image, seed) in enumerate(zip(images, [3, 4, 5])):
        alone = list(engine.dream(stepper, image, schedule_of(style), seed=seed))
        for a, b in zip(alone, [frames[i] for frames in together]):
            assert a.shape == image.shape and np.abs(a.astype(int) - b).max() <= 2
