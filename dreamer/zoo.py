"""The style zoo: a style names a network, the layers to dream on, and the dream's parameters."""

import dataclasses
import difflib
from dataclasses import dataclass, field

from dreamer.errors import StyleError


@dataclass(frozen=True)
class Style:
    """One dreaming style. `layers` maps a layer name to its weight in the objective;
    `channels` optionally restricts a layer to some of its channels."""

    name: str
    network: str
    layers: dict[str, float]
    channels: dict[str, tuple[int, ...]] = field(default_factory=dict)
    octaves: int = 4
    octave_scale: float = 1.4
    steps: int = 15  # gradient steps per octave
    step_size: float = 0.02  # in the network's input range, [-1, 1]
    every: int = 4  # a frame every `every` steps
    tile_size: int = 512
    keep_colors: bool = False
    precision: str = "auto"
    description: str = ""

    @property
    def total_steps(self) -> int:
        return self.octaves * self.steps

    def to_dict(self) -> dict:
        """Plain data, for the manifest and the render key."""
        data = dataclasses.asdict(self)
        data["channels"] = {k: list(v) for k, v in self.channels.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "Style":
        """Build a style from plain data (gallery.toml), raising StyleError on bad keys or values."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise StyleError(f"style {data.get('name', '?')!r}: unknown key {unknown[0]!r}")
        missing = [k for k in ("name", "network", "layers") if k not in data]
        if missing:
            raise StyleError(f"style {data.get('name', '?')!r}: missing key {missing[0]!r}")
        data = dict(data)
        if isinstance(data["layers"], (list, tuple)):
            data["layers"] = {name: 1.0 for name in data["layers"]}
        data["channels"] = {k: tuple(int(c) for c in v) for k, v in data.get("channels", {}).items()}
        return cls(**data).validated()

    def replace(self, **changes) -> "Style":
        """A copy with some parameters changed (None leaves one as it is), validated."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None}).validated()

    def validated(self) -> "Style":
        """Return self if every parameter is in range, else raise StyleError naming the first bad one."""
        checks = [
            ("layers", isinstance(self.layers, dict) and len(self.layers) > 0, "needs at least one layer"),
            ("octaves", isinstance(self.octaves, int) and self.octaves >= 1, "must be an integer >= 1"),
            ("octave_scale", 1.0 < self.octave_scale <= 3.0, "must be in (1, 3]"),
            ("steps", isinstance(self.steps, int) and self.steps >= 1, "must be an integer >= 1"),
            ("step_size", 0 < self.step_size <= 1, "must be in (0, 1]"),
            ("every", isinstance(self.every, int) and self.every >= 1, "must be an integer >= 1"),
            ("tile_size", isinstance(self.tile_size, int) and self.tile_size >= 64, "must be an integer >= 64"),
        ]
        for key, ok, problem in checks:
            if not ok:
                raise StyleError(f"style {self.name!r}: {key} {problem}")
        return self


STYLES: dict[str, Style] = {s.name: s for s in [
    Style("vgg16-textures", "vgg16", {"block3_conv3": 1.0},
          description="VGG16 block3: fine brush-stroke textures and patterns"),
    Style("vgg16-eyes", "vgg16", {"block4_conv3": 1.0},
          description="VGG16 block4_conv3: the classic VGG eyes and swirls"),
    Style("vgg16-deep", "vgg16", {"block5_conv2": 1.0, "block5_conv3": 0.5},
          description="VGG16 block5: creatures, faces and architecture"),
    Style("hed-edges", "hed", {"hed_fuse": 1.0},
          description="HED's edge output: the photo redrawn as a dense line drawing"),
    Style("effnet-lite0-shapes", "effnet-lite0", {"block5_project_bn": 1.0}, step_size=0.03,
          description="EfficientNet-Lite0 block 5: swirling rounded shapes, scales and eyes"),
    Style("effnet-lite0-objects", "effnet-lite0", {"block11_project_bn": 1.0}, step_size=0.03,
          description="EfficientNet-Lite0 block 11: fine object parts and fur"),
]}


def get_style(name: str) -> Style:
    """The zoo style called `name`, or a one-line StyleError with the closest names."""
    try:
        return STYLES[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(STYLES), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else "; `dreamer styles` lists them"
        raise StyleError(f"unknown style {name!r}{hint}") from None
