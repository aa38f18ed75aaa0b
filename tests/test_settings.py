"""gallery.toml: defaults, overrides, inline styles, and one-line errors that name the key."""

import pytest

from dreamer.gallery.settings import DEFAULTS, ConfigError, create_settings, load
from dreamer.style import STYLES, Style

from conftest import REPO


def write(tmp_path, text):
    path = tmp_path / "gallery.toml"
    path.write_text(text)
    return path


def test_defaults_are_valid_and_use_the_zoo(tmp_path):
    settings = create_settings(root=tmp_path)
    assert settings.size == 384 and settings.seed == 0
    assert [s.name for s in settings.styles] == DEFAULTS["styles"]
    assert settings.styles[0] is STYLES["vgg16-eyes"]
    assert settings.inputs == tmp_path / "inputs" and settings.output == tmp_path / "site"
    assert settings.gif["frame_ms"] == 120
    assert settings.batch == "auto" and load(write(tmp_path, "batch = 4")).batch == 4


def test_the_shipped_gallery_toml_loads():
    settings = load(REPO / "gallery.toml")
    assert len(settings.styles) >= 4 and len({s.network for s in settings.styles}) >= 2
    assert settings.inputs == REPO / "inputs" and settings.output == REPO / "site"


def test_style_tables_change_derive_and_define_styles(tmp_path):
    settings = load(write(tmp_path, """
        size = 96
        inputs = "photos"
        styles = ["hed-edges", "eyes-strong", "mine"]
        [gif]
        pingpong = true
        [style.hed-edges]
        steps = 3
        [style.eyes-strong]
        base = "vgg16-eyes"
        step_size = 0.05
        [style.mine]
        network = "vgg16"
        layers = { block3_conv1 = 1.0, block4_conv1 = 0.5 }
        octaves = 2
    """))
    hed, strong, mine = settings.styles
    assert hed == STYLES["hed-edges"].replace(steps=3)
    assert strong.name == "eyes-strong" and strong.layers == STYLES["vgg16-eyes"].layers and strong.step_size == 0.05
    assert mine == Style("mine", "vgg16", {"block3_conv1": 1.0, "block4_conv1": 0.5}, octaves=2)
    assert settings.gif["pingpong"] is True and settings.gif["frame_ms"] == 120  # gif merges with defaults
    assert settings.size == 96 and settings.inputs == tmp_path / "photos"


def test_create_settings_takes_style_objects():
    style = STYLES["vgg16-eyes"].replace(steps=2)
    assert create_settings(styles=[style], size=64).styles == (style,)


def test_gallery_precision_applies_where_a_style_sets_none(tmp_path):
    settings = load(write(tmp_path, "precision = 'bfloat16'\nstyles = ['vgg16-eyes', 'hed-edges']\n"
                                    "[style.hed-edges]\nprecision = 'float32'"))
    assert [s.precision for s in settings.styles] == ["bfloat16", "float32"]
    assert load(write(tmp_path, "styles = ['vgg16-eyes']")).styles[0].precision == "auto"


@pytest.mark.parametrize("text, expected", [
    ("wallpaper = 'red'", "unknown key 'wallpaper'; known keys: title, intro"),
    ("sizes = 320", "unknown key 'sizes'; did you mean size?"),
    ("size = 'big'", "size: must be a whole number of pixels from 32 to 4096, got 'big'"),
    ("size = 10", "size: must be a whole number of pixels"),
    ("seed = -1", "seed: must be an integer"),
    ("title = 3", "title: must be a string"),
    ("styles = []", "styles: must be a non-empty list"),
    ("styles = ['vgg16-eyez']", "styles: unknown style 'vgg16-eyez'; did you mean vgg16-eyes"),
    ("styles = ['vgg16-eyes', 'vgg16-eyes']", "styles: 'vgg16-eyes' is listed twice"),
    ("[gif]\npalette = 'fancy'", "gif.palette: must be one of"),
    ("[gif]\nspeed = 2", "unknown key 'gif.speed'; known: frame_ms"),
    ("cluster = 'everywhere'", "cluster: 'everywhere': use auto, local, local:N, ray://HOST:PORT or HOST:PORT"),
    ("[video]\nformat = ['mp4']", "unknown key 'video.format'; did you mean formats?"),
    ("[video]\nformats = ['avi']", "video.formats: must be a list of 'webm' and 'mp4' (or [] for GIFs only), got ['avi']"),
    ("[video]\nsmall = 10", "video.small: must be 0 (none) or an integer from 32 to 4096, got 10"),
    ("[gif]\nlossy = -1", "gif.lossy: must be an integer from 1 to 200, got -1"),
    ("[gif]\nframe = 80", "unknown key 'gif.frame'; did you mean frame_ms?"),
    ("[gif]\nframe_ms = 0", "gif.frame_ms: must be a whole number of milliseconds from 10 to 60000, got 0"),
    ("[gif]\ndither = 'yes'", "gif.dither: must be true or false"),
    ("styles = ['vgg16-eyes']\n[style.vgg16-eyes]\nsteps = 0", "style.vgg16-eyes: style 'vgg16-eyes': steps must be"),
    ("styles = ['vgg16-eyes']\n[style.vgg16-eyes]\nsteep = 3", "unknown key 'steep'; did you mean steps"),
    ("styles = ['vgg16-eyes']\n[style.vgg16-eyes]\nwibble = 3",
     "unknown key 'wibble'; known keys: channels, clip_carry, clip_steps, contrast"),
    ("output = 'gallery.toml'", "output: " + "{tmp_path}" + "/gallery.toml is a file, not a folder; name a folder"),
    ("styles = ['vgg16-eyes']\n[style.vgg16-eyes]\nprecision = 'fp8'", "style.vgg16-eyes: style 'vgg16-eyes': precision must be one of"),
    ("styles = ['mine']\n[style.mine]\nnetwork = 'vgg16'", "style.mine: style 'mine': missing key 'layers'"),
    ("styles = ['vgg16-eyes']\n[style.mine]\nbase = 'vgg16-eyes'", "style.mine: defined but not listed in styles"),
    ("size = ", "not valid TOML"),
    ("precision = 'fp8'", "precision: must be one of auto, float32, bfloat16, got 'fp8'"),
    ("batch = 0", "batch: must be a whole number from 1 to 256, or 'auto', got 0"),
    ("batch = 'most'", "batch: must be a whole number from 1 to 256, or 'auto', got 'most'"),
])
def test_bad_config_is_one_line_naming_the_key(tmp_path, text, expected):
    with pytest.raises(ConfigError) as info:
        load(write(tmp_path, text))
    message = str(info.value)
    assert expected.format(tmp_path=tmp_path) in message and "\n" not in message
    assert message.startswith(str(tmp_path / "gallery.toml"))


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="gallery.toml: not found"):
        load(tmp_path / "gallery.toml")


@pytest.mark.parametrize(("flag", "key", "text"), [
    ("--frame-ms", "gif.frame_ms", "5"), ("--steps", "style.vgg16-eyes.steps", "0"),
    ("--step-size", "style.vgg16-eyes.step_size", "1.5"), ("--size", "size", "20000"),
    ("--precision", "style.vgg16-eyes.precision", "fp8")])
def test_an_option_has_one_declaration_that_the_cli_and_gallery_toml_both_check(tmp_path, capsys, flag, key, text):
    """The same bad value is refused by the command line and by gallery.toml with the same bounds."""
    from dreamer.cli import main

    with pytest.raises(SystemExit):
        main(["render", "photo.jpg", flag, text])
    cli_line = capsys.readouterr().err.strip().splitlines()[-1]
    table, _, name = key.rpartition(".")
    value = text if name == "precision" else (float(text) if "." in text else int(text))
    toml = {"size": f"size = {value}", "gif": f"[gif]\n{name} = {value}"}.get(
        table or name, f"styles = ['vgg16-eyes']\n[{table}]\n{name} = {value!r}")
    with pytest.raises(ConfigError) as error:
        load(write(tmp_path, toml))
    assert ": must be " in cli_line, cli_line
    bound = "must be " + cli_line.split(": must be ")[-1]  # such as "must be an integer from 10 to 60000"
    assert bound in str(error.value), (cli_line, str(error.value))


def test_a_painting_without_a_step_size_takes_steps_long_enough_to_carry_it_in_the_cli_and_the_gallery(tmp_path):
    from dreamer.networks import get_style
    from dreamer.style import PAINTING_STEP_SIZE

    settings = load(write(tmp_path, """
        styles = ["painted", "painted-slow"]
        [style.painted]
        base = "vgg16-textures"
        style_image = "art.png"
        [style.painted-slow]
        base = "vgg16-textures"
        style_image = "art.png"
        step_size = 0.01
    """))
    painted, slow = settings.styles
    assert painted.step_size == PAINTING_STEP_SIZE == get_style("vgg16-textures", style_image="art.png").step_size
    assert slow.step_size == 0.01 == get_style("vgg16-textures", style_image="art.png", step_size=0.01).step_size
    assert STYLES["vgg16-textures"].step_size < PAINTING_STEP_SIZE
