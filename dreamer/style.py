"""The style zoo: a style names a network, the layers to dream on, and the dream's parameters."""

import dataclasses
from dataclasses import dataclass, field

from dreamer.errors import StyleError, closest

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
    octaves: int = 4
    octave_scale: float = 1.4
    steps: int = 15  # gradient steps per octave
    step_size: float = 0.02  # in the network's input range, [-1, 1]
    every: int = 4  # a frame every `every` steps
    tile_size: int = 512
    keep_colors: bool = False
    lapnorm: bool = False  # Laplacian-pyramid gradient normalisation (the TF1 tutorial's render_lapnorm)
    precision: str = "auto"
    target_class: str = ""
    contrast: bool = False  # stretch the frames' 1-99 % range to full range (class styles)
    guide: str = ""  # a photo's path: dream toward its features on `layers` (objectives.from_guide)
    objective: str = ""  # instead of `layers`: maths of objectives, "layer('mixed3') - 0.1 * total_variation()"
    style_image: str = ""  # a painting's path: also dream toward its textures (objectives.style_image)
    style_weight: float = PAINTING_WEIGHT  # how much of the painting: the style_image term's weight
    clip_steps: int | None = None  # a clip's frames after the first: steps each (None: CLIP_STEPS_SHARE of `steps`)
    clip_carry: float | None = None  # and how much of the dream before, moved, each starts from (None: CLIP_CARRY)
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
        checks = [
            ("layers", isinstance(self.layers, dict) and (len(self.layers) > 0 or bool(self.target_class)
                                                          or bool(self.objective)),
             "needs at least one layer (or a target_class, or an objective)"),
            ("octaves", isinstance(self.octaves, int) and self.octaves >= 1, "must be an integer >= 1"),
            ("octaves", not self.target_class or self.octaves == 1, "must be 1 in a class style"),
            ("octave_scale", 1.0 < self.octave_scale <= 3.0, "must be in (1, 3]"),
            ("steps", isinstance(self.steps, int) and self.steps >= 1, "must be an integer >= 1"),
            ("step_size", 0 < self.step_size <= 1, "must be in (0, 1]"),
            ("every", isinstance(self.every, int) and self.every >= 1, "must be an integer >= 1"),
            ("tile_size", isinstance(self.tile_size, int) and self.tile_size >= 64, "must be an integer >= 64"),
            ("style_weight", isinstance(self.style_weight, (int, float)) and 0 < self.style_weight <= 1e6,
             "must be a number > 0"),
            ("style_image", not (self.style_image and self.target_class), "cannot be used in a class style"),
            ("clip_steps", self.clip_steps is None or (isinstance(self.clip_steps, int) and self.clip_steps >= 1),
             "must be an integer >= 1"),
            ("clip_carry", self.clip_carry is None or (isinstance(self.clip_carry, (int, float))
                                                       and 0 <= self.clip_carry <= 1), "must be in [0, 1]"),
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
