"""The style zoo: a style names a network, the layers to dream on, and the dream's parameters."""

import dataclasses
from dataclasses import dataclass, field

from dreamer.engine.precision import PRECISIONS
from dreamer.errors import StyleError, closest
from dreamer.options import declared, option, problem

# A style image's defaults. The style term (objectives.style_image, a relative Gram distance) pulls VGG16's pixels
# 3-12 times more weakly than a zoo style's mean activation does, and every step is normalised to one size:
# at a weight of 1 the painting got a small part of each step, and in 60 steps of 0.02 even all of each step
# hardly moves the colours. At 10 the painting leads (30 and more change little: it has nearly all of each
# step), and steps of 0.06 (the CLI's, when --step-size is not given) carry its colours in the usual steps.
PAINTING_WEIGHT = 10.0
PAINTING_STEP_SIZE = 0.06
# The defaults of a style's clip settings (clip_steps, clip_carry), chosen by looking at 30 frames of
# bench/bench_video.py's clip at 192 px in vgg16-eyes (mean |dream - source| of each frame in brackets, the first
# 25.5): carrying all the detail and adding 5 steps a frame, the dream grows and saturates (36.9 by the 30th); 0.9
# of it fades and blurs (19.5); 0.95 holds the first frame's strength and look (25.0), as 0.97 does with 4 steps.
CLIP_STEPS_SHARE = 1 / 3  # of `steps`
CLIP_CARRY = 0.95


@dataclass(frozen=True)
class Style:
    """One dreaming style. `layers` maps a layer name to its weight in the objective;
    `channels` optionally restricts a layer to some of its channels.

    A class style names a `target_class` (a name or index in the network's `logits`) instead of layers:
    it renders with the visualisation recipe (visualize.py) from static or a photo, in one octave of
    `steps` Adam steps with learning rate `step_size`.
    """

    name: str
    network: str
    layers: dict[str, float]
    channels: dict[str, tuple[int, ...]] = field(default_factory=dict)
    octaves: int = option(4, "number of octaves", low=1)
    octave_scale: float = option(1.4, "size ratio between octaves, about 1.3-1.4", above=1.0, high=3.0)
    steps: int = option(15, "gradient steps per octave", low=1)
    step_size: float = option(0.02, "step size in the network's [-1, 1] input range", above=0.0, high=1.0)
    every: int = option(4, "a frame every N steps", low=1)
    tile_size: int = option(512, "tile side for big images", low=64)
    keep_colors: bool = option(False, "dream the luminance only, keep the photo's colours")
    lapnorm: bool = option(False, "Laplacian-pyramid gradient normalisation (the TF1 tutorial's render_lapnorm)")
    precision: str = option("auto", "network precision", choices=PRECISIONS)
    target_class: str = option("", "dream toward an ImageNet class, a name or index in the network's logits (with "
                               "no --style: effnet-lite0-class)", flag="--class", metavar="NAME_OR_INDEX")
    contrast: bool = option(False, "stretch the frames' 1-99%% range to full contrast (class styles)")
    guide: str = option("", "dream toward this photo's features on the style's layers", metavar="IMAGE")
    objective: str = option("", "instead of layers: maths of objectives, such as "
                                "\"layer('mixed3') - 0.1 * total_variation()\"", metavar="MATHS")
    style_image: str = option("", "also dream toward this painting's textures and colours (Gram matrices, Gatys et "
                                  "al.)", metavar="PAINTING")
    style_weight: float = option(PAINTING_WEIGHT, "how much of the painting: 1 a touch, 100 nearly all of each "
                                 f"step; without a step size, steps are {PAINTING_STEP_SIZE} at least", above=0.0,
                                 high=1e6, metavar="W")
    clip_steps: int | None = option(None, "a clip's frames after the first: ascent steps each (left out: "
                                          "a third of the style's steps)", low=1, kind=int, metavar="N")
    clip_carry: float | None = option(None, "how much of the dream before, moved along the flow, each next frame of "
                                            f"a clip starts from ({CLIP_CARRY:g})", low=0.0, high=1.0, kind=float,
                                      metavar="F")
    description: str = ""

    @property
    def total_steps(self) -> int:
        return self.octaves * self.steps

    @property
    def frame_steps(self) -> list[int]:
        """The step each frame of a render shows: 0 (the photo), every `every` steps, and the last."""
        total = self.total_steps
        return [0] + [n for n in range(1, total + 1) if n % self.every == 0 or n == total]

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
            hint = closest(unknown[0], sorted(known), f"known keys: {', '.join(sorted(known))}")
            raise StyleError(f"style {data.get('name', '?')!r}: unknown key {unknown[0]!r}{hint}")
        data = {**data, "target_class": str(data.get("target_class", ""))}  # an index may come as a number
        layerless = data["target_class"] or data.get("objective")  # these styles need no `layers`
        required = ("name", "network") if layerless else ("name", "network", "layers")
        missing = [k for k in required if k not in data]
        if missing:
            raise StyleError(f"style {data.get('name', '?')!r}: missing key {missing[0]!r}")
        data = {"layers": {}, **data}
        if isinstance(data["layers"], (list, tuple)):
            data["layers"] = {name: 1.0 for name in data["layers"]}
        data["channels"] = {k: tuple(int(c) for c in v) for k, v in data.get("channels", {}).items()}
        return cls(**data).validated()

    def replace(self, **changes) -> "Style":
        """A copy with some parameters changed (None leaves one as it is), validated."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None}).validated()

    def validated(self) -> "Style":
        """Return self if every parameter is in range, else raise StyleError naming the first bad one."""
        for name in declared(Style):
            wrong = problem(Style, name, getattr(self, name))
            if wrong:
                raise StyleError(f"style {self.name!r}: {name} {wrong}")
        checks = [
            ("layers", isinstance(self.layers, dict) and (len(self.layers) > 0 or bool(self.target_class)
                                                          or bool(self.objective)),
             "needs at least one layer (or a target_class, or an objective)"),
            ("octaves", not self.target_class or self.octaves == 1, "must be 1 in a class style"),
            ("style_image", not (self.style_image and self.target_class), "cannot be used in a class style"),
        ]
        for key, ok, message in checks:
            if not ok:
                raise StyleError(f"style {self.name!r}: {key} {message}")
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
    Style("effnet-lite0-class", "effnet-lite0", {}, octaves=1, steps=250, step_size=0.05, every=10,
          target_class="banana", contrast=True,
          description="EfficientNet-Lite0's ImageNet head: static (or a photo) into a class, bananas by default"),
    Style("mobilenetv2-dogs", "mobilenetv2", {}, octaves=1, steps=250, step_size=0.05, every=10,
          target_class="pug", contrast=True,
          description="MobileNetV2's dog-breed head: static (or a photo) into a breed, pugs by default"),
    Style("mobilenetv2-eyes", "mobilenetv2", {"block_6_expand_relu": 1.0}, step_size=0.03,
          description="MobileNetV2 block 6: concentric eyes everywhere"),
    Style("mobilenetv2-fine", "mobilenetv2", {"block_13_expand_relu": 1.0}, steps=20, step_size=0.05, every=5,
          description="MobileNetV2 block 13 (dog-breed tuned): fine mosaics, dog faces, towers"),
    Style("inceptionv3-tutorial", "inceptionv3", {"mixed3": 1.0, "mixed5": 1.0}, step_size=0.03,
          description="InceptionV3 mixed3 + mixed5, the TensorFlow tutorial's layers: eyes, blobs and faces"),
    Style("inceptionv3-swirls", "inceptionv3", {"mixed2": 1.0}, step_size=0.04,
          description="InceptionV3 mixed2: swirling brush strokes with small eyes"),
]}


def clip_steps(style) -> int:
    """The ascent steps a clip's frame after the first takes: the style's, else CLIP_STEPS_SHARE of its steps."""
    return style.clip_steps or max(1, round(style.steps * CLIP_STEPS_SHARE))


def clip_carry(style) -> float:
    """How much of the moved detail a clip's frame after the first starts from: the style's, else CLIP_CARRY."""
    return CLIP_CARRY if style.clip_carry is None else style.clip_carry
