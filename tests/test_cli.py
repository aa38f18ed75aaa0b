"""The `dreamer` command through its real entry points, with real weights and tiny renders."""

import subprocess
import sys

import numpy as np
import pytest
import skimage.data
from PIL import Image

from dreamer.cli import main

TINY = ["--style", "vgg16-textures", "--size", "48", "--octaves", "1", "--steps", "2", "--every", "1"]


def write_photo(path, mode="RGB", **save):
    image = Image.fromarray(skimage.data.chelsea()).resize((60, 40))
    image.convert(mode).save(path, **save)
    return path


def gif_frames(path):
    with Image.open(path) as gif:
        return gif.n_frames, gif.size


def test_render_through_python_m_dreamer(tmp_path):
    photo = write_photo(tmp_path / "cat.png")
    out = tmp_path / "cat.gif"
    done = subprocess.run([sys.executable, "-m", "dreamer", "render", str(photo), *TINY, "-o", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert gif_frames(out) == (3, (48, 32))  # the photo, 2 steps, 48 px on the long side
    assert Image.open(tmp_path / "cat.jpg").size == (48, 32)  # the still
    assert "Traceback" not in done.stderr


def test_an_output_ending_in_a_slash_is_a_new_folder(tmp_path):
    photo = write_photo(tmp_path / "cat.png")
    assert main(["render", str(photo), *TINY, "-o", f"{tmp_path / 'new'}/"]) == 0
    assert gif_frames(tmp_path / "new" / "cat-vgg16-textures.gif") == (3, (48, 32))
    assert (tmp_path / "new" / "cat-vgg16-textures.jpg").exists()


def test_an_output_that_is_not_a_gif_fails_on_one_line_before_rendering(tmp_path, capsys):
    photo = write_photo(tmp_path / "cat.png")
    assert main(["render", str(photo), *TINY, "-o", str(tmp_path / "cat-dream.png")]) == 2
    assert capsys.readouterr().err == f"error: -o {tmp_path / 'cat-dream.png'}: a GIF's name ends in .gif " \
                                      "(end the path in / for a folder)\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cat.png"]


def test_an_output_that_cannot_be_written_fails_on_one_line_while_others_render(tmp_path, capsys):
    photos = [write_photo(tmp_path / "cat.png"), write_photo(tmp_path / "dog.png")]
    blocked = tmp_path / "out" / "cat-vgg16-textures.gif"
    blocked.mkdir(parents=True)  # a folder where the GIF should go
    assert main(["render", *map(str, photos), *TINY, "-o", str(tmp_path / "out")]) == 1
    assert capsys.readouterr().err.splitlines() == [f"error: {blocked}: Is a directory"]
    assert gif_frames(tmp_path / "out" / "dog-vgg16-textures.gif") == (3, (48, 32))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [  # no temp file left behind
        "cat-vgg16-textures.gif", "dog-vgg16-textures.gif", "dog-vgg16-textures.jpg"]


def test_photos_of_one_size_dream_together(tmp_path, capsys, batched):
    photos = [write_photo(tmp_path / "cat.png"), tmp_path / "tall.png", write_photo(tmp_path / "dog.png")]
    Image.fromarray(skimage.data.astronaut()).resize((40, 60)).save(photos[1])
    assert main(["render", *map(str, photos), *TINY, "-o", str(tmp_path / "out")]) == 0
    assert sorted(batched) == [[(32, 48), (32, 48)], [(48, 32)]]  # cat and dog at once (batch auto on a CPU)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == [str(tmp_path / "out" / f"{p.stem}-vgg16-textures.gif")
                                                   for p in photos]  # in the order given
    assert gif_frames(tmp_path / "out" / "tall-vgg16-textures.gif") == (3, (32, 48))


@pytest.mark.parametrize("option, value, use", [("--size", "0", "a whole number of pixels from 32 to 4096"),
                                                ("--size", "1.5", "a whole number of pixels from 32 to 4096"),
                                                ("--frame-ms", "0", "a whole number of milliseconds from 10 to 60000"),
                                                ("--seed", "-5", "an integer from 0 to 4294967295")])
def test_out_of_range_numbers_are_refused_with_the_range(tmp_path, capsys, option, value, use):
    with pytest.raises(SystemExit) as exit_:
        main(["render", str(write_photo(tmp_path / "cat.png")), *TINY, option, value])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(f"argument {option}: '{value}': must be {use}")


@pytest.mark.parametrize("argv, error", [
    (["render", "noise:abc", *TINY], "error: noise:abc: write noise or noise:WxH, such as noise:640x480"),
    (["layers", "vgg"], "error: unknown network 'vgg'; did you mean vgg16?"),
    (["layers", "nonet"],
     "error: unknown network 'nonet'; built in: effnet-lite0, hed, inceptionv3, mobilenetv2, vgg16"),
])
def test_unknown_names_get_one_line_with_the_fix(capsys, argv, error):
    assert main(argv) in (1, 2)
    assert capsys.readouterr().err == error + "\n"


def test_same_seed_same_bytes(tmp_path):
    photo = write_photo(tmp_path / "cat.png")
    for name in ("a.gif", "b.gif"):
        assert main(["render", str(photo), *TINY, "--seed", "7", "-o", str(tmp_path / name)]) == 0
    assert (tmp_path / "a.gif").read_bytes() == (tmp_path / "b.gif").read_bytes()


def test_odd_images_render_and_bad_ones_fail_on_one_line_while_others_render(tmp_path, capsys):
    rotated = Image.fromarray(skimage.data.chelsea()).resize((60, 40))
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated by 90 degrees: 40 wide, 60 high
    rotated.save(tmp_path / "rotated.jpg", exif=exif)
    good = [
        tmp_path / "rotated.jpg",
        write_photo(tmp_path / "gray.png", "L"),
        write_photo(tmp_path / "cmyk.jpg", "CMYK"),
        write_photo(tmp_path / "alpha.png", "RGBA"),
        write_photo(tmp_path / "palette.png", "P"),
        write_photo(tmp_path / "anim.gif", "P", save_all=True,
                    append_images=[Image.new("P", (60, 40), 3)], duration=100, loop=0),
    ]
    Image.fromarray(np.linspace(0, 65535, 60 * 40, dtype=np.uint16).reshape(40, 60)).save(tmp_path / "deep.png")
    good.append(tmp_path / "deep.png")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes((write_photo(tmp_path / "full.jpg")).read_bytes()[:600])
    text = tmp_path / "notes.jpg"
    text.write_text("not a photo")
    bomb = tmp_path / "bomb.png"
    Image.new("1", (8000, 8000)).save(bomb)  # 64 megapixels: over the 50 MP limit
    bad = [truncated, text, bomb, tmp_path / "missing.png"]

    status = main(["render", *map(str, [bad[0], *good[:3], bad[1], *good[3:], bad[2], bad[3]]), *TINY,
                   "-o", str(tmp_path / "out")])
    assert status == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == len(bad)
    for path, line in zip(bad, errors):
        assert path.name in line
    for path in good:
        frames, size = gif_frames(tmp_path / "out" / f"{path.stem}-vgg16-textures.gif")
        assert frames == 3 and max(size) == 48
    assert gif_frames(tmp_path / "out" / "rotated-vgg16-textures.gif")[1] == (32, 48)  # orientation applied


def test_unknown_style_is_one_line(capsys):
    assert main(["render", "whatever.jpg", "--style", "vgg16-eyez"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown style 'vgg16-eyez'; did you mean vgg16-eyes")
    assert err.count("\n") == 1


def test_styles_lists_every_style_with_network_and_layers(capsys):
    from dreamer.style import STYLES

    assert main(["styles"]) == 0
    out = capsys.readouterr().out
    for style in STYLES.values():
        assert style.name in out and style.network in out
        assert all(layer in out for layer in style.layers)


def test_layers_lists_shapes(capsys):
    assert main(["layers", "vgg16"]) == 0
    out = capsys.readouterr().out
    assert "block4_conv3" in out and "512" in out


def test_class_names_come_from_the_style_network(capsys):
    assert main(["render", "noise", "--style", "mobilenetv2-dogs", "--class", "pugg"]) == 2
    assert "did you mean pug" in capsys.readouterr().err
    assert main(["render", "noise", "--class", "bananna"]) == 2  # the default: EfficientNet-Lite0's ImageNet
    assert "did you mean banana" in capsys.readouterr().err


def test_class_on_a_network_without_a_head_is_one_line():
    import pytest

    from dreamer.errors import StyleError
    from dreamer.networks import class_names

    with pytest.raises(StyleError, match="no class head.*effnet-lite0.*mobilenetv2"):
        class_names("vgg16")


def test_guide_dreams_toward_another_photo(tmp_path):
    from dreamer.dreaming import prepare
    from dreamer.engine.loop import objective_value
    from dreamer.networks import get_style

    photo, guide = write_photo(tmp_path / "cat.png"), tmp_path / "coffee.png"
    Image.fromarray(skimage.data.coffee()).resize((60, 40)).save(guide)
    out = tmp_path / "guided.gif"
    assert main(["render", str(photo), *TINY, "--steps", "4", "--guide", str(guide), "-o", str(out)]) == 0
    assert gif_frames(out) == (5, (48, 32))
    style = get_style("vgg16-textures").replace(octaves=1, steps=4, every=1, guide=str(guide))
    extract, objective, _, _ = prepare(style)  # the guide's objective: alignment with the coffee's features
    with Image.open(out) as gif:
        gif.seek(gif.n_frames - 1)
        last = np.asarray(gif.convert("RGB"))
    first = np.asarray(Image.open(photo).convert("RGB").resize((48, 32), Image.LANCZOS))
    assert objective_value(extract, objective, last) > objective_value(extract, objective, first)
