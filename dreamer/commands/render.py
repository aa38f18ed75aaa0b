"""`dreamer render`: dream photos (or static) into dreaming GIFs, in one or more styles, with their stills and
videos; a style's photos of one size dream together."""

import os
import sys
from pathlib import Path

from dreamer.commands import render_clip
from dreamer.commands.argtypes import batch
from dreamer.engine.backends import BACKENDS, activate
from dreamer.errors import DreamerError
from dreamer.files.safety import Inputs, check_outputs
from dreamer.media.clips import is_clip
from dreamer.options import GifOptions, RenderOptions, add_flags
from dreamer.style import Style

HELP = "dream one or more photos into GIFs, or clips into videos"
# The style's parameters a flag changes (declared in dreamer.style, help and bounds with them).
STYLE_FLAGS = ("octaves", "octave_scale", "steps", "step_size", "every", "tile_size", "precision", "keep_colors",
               "target_class", "contrast", "guide", "style_image", "style_weight", "clip_steps", "clip_carry")


def arguments(parser) -> None:
    """`dreamer render`'s options on `parser`."""
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="photo(s) to dream, or `noise` (--size square) / `noise:WxH`: static seeded by --seed")
    parser.add_argument("--style", action="append", dest="styles", metavar="NAME",
                        help="style from `dreamer styles` (repeat for several; default vgg16-eyes)")
    parser.add_argument("-o", "--output",
                        help="GIF path (one input, one style) or folder: one that exists or ends in / "
                             "(default: INPUT-STYLE.gif here)")
    add_flags(parser, RenderOptions, ["size", "seed"])
    add_flags(parser.add_argument_group("the style's parameters (left out: the style's own)"), Style, STYLE_FLAGS,
              keep=True)
    parser.add_argument("--batch", type=batch, default="auto",
                        help="tiles sent through the network together, or auto: from free GPU memory, on a CPU 4 "
                             "for images of one tile, else 1")
    parser.add_argument("--backend", choices=BACKENDS,
                        help="Keras backend (default: $KERAS_BACKEND, else jax on an NVIDIA GPU, else tensorflow)")
    parser.add_argument("--zoom", type=float, metavar="F",
                        help="endless tunnel: zoom into the centre by F (e.g. 1.03) before each frame")
    add_flags(parser, GifOptions, ["frame_ms", "pingpong", "dither"])
    parser.add_argument("--no-still", action="store_true", help="do not write the final frame as a JPEG")
    parser.add_argument("--video", action="store_true",
                        help="also write INPUT-STYLE.webm (VP9) and .mp4 (H.264) from the same frames, GIF timings")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing files at the output paths that Dreamer did not write (never an input)")
    render_clip.arguments(parser)


def run(args) -> int:
    """Render every input in every style; 0 when all were written, 1 when one failed."""
    activate(args.backend)
    from tqdm import tqdm

    from dreamer.dreaming import render_many
    from dreamer.media.video import FORMATS, VideoOptions
    from dreamer.networks import get_style

    names = args.styles or ["effnet-lite0-class" if args.target_class else "vgg16-eyes"]
    styles = [get_style(name, **{flag: getattr(args, flag) for flag in STYLE_FLAGS}) for name in names]
    if all(is_clip(name) for name in args.inputs):  # videos and animations: dreamed coherently, frame by frame
        # (among photos, an animated GIF dreams as a photo: its first frame)
        return render_clip.run(args, styles)
    render_clip.refuse_videos_among_photos(args.inputs)
    if args.zoom is not None and not 1.0 < args.zoom <= 2.0:
        raise DreamerError(f"--zoom {args.zoom:g}: use a factor between 1 and 2, such as 1.03")
    options = RenderOptions(size=args.size, seed=args.seed, batch=args.batch, zoom=args.zoom,
                            gif=GifOptions(frame_ms=args.frame_ms, pingpong=args.pingpong, dither=args.dither),
                            video=VideoOptions(FORMATS if args.video else ()))
    many = len(args.inputs) * len(styles) > 1
    outputs = {style.name: [_output_path(args, Path(name), style.name, many) for name in args.inputs]
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


def _output_path(args, input_path: Path, style_name: str, many: bool) -> Path:
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


def _error_line(error: Exception, out: Path) -> str:
    """A render's failure as one line: a DreamerError as it is; an output that cannot be written named by its
    target (a rename's, not its temp file's)."""
    if isinstance(error, OSError):
        return f"{error.filename2 or error.filename or out}: {error.strerror or error}"
    return str(error)

