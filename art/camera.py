"""Film a photo: a seeded clip of a camera panning across it and zooming in, with a tone that starts partway (to
check that sound stays in sync), written by PyAV as MP4 (H.264 + AAC) or WebM (VP9 + Opus). The motion is known:
frame i shows the photo through the window `window(i)`. Same arguments, same frames.

    python art/camera.py inputs/coffee.jpg coffee-pan.mp4 [--size 320x180] [--frames 48] [--fps 24] [--tone 1.0]
"""

import argparse
from fractions import Fraction

import numpy as np
from PIL import Image

TONE_HZ = 440


def window(i: int, frames: int, photo_size, aspect: float, pan: float = 0.35, zoom: float = 1.3):
    """(left, top, width, height) of the photo that frame `i` of `frames` shows: a window of `aspect` (width /
    height) 1/`zoom` of the photo's short side at the start, moving right by `pan` of the photo's width and
    narrowing to 1/zoom of its starting size by the end."""
    width, height = photo_size
    share = i / max(1, frames - 1)
    h = min(height, width / aspect) * 0.75 / (1 + (zoom - 1) * share)
    w = h * aspect
    left = (width - w) * (0.5 - pan / 2 + pan * share)
    top = (height - h) * 0.5
    return left, top, w, h


def film(photo: Image.Image, size=(160, 96), frames: int = 12, pan: float = 0.35, zoom: float = 1.3):
    """The clip's frames, uint8 H x W x 3 of `size` (width, height)."""
    out = []
    for i in range(frames):
        left, top, w, h = window(i, frames, photo.size, size[0] / size[1], pan, zoom)
        box = (left, top, left + w, top + h)
        out.append(np.asarray(photo.resize(size, Image.Resampling.BICUBIC, box=box)))
    return out


def write(path, frames, times, tone_at=None, end=None, audio_codec=None):
    """Write `frames` at `times` (seconds) to `path` (.mp4: H.264 without B-frames + AAC, .webm: VP9 + Opus, by
    PyAV), the last shown until `end`; with `tone_at`, a mono track of silence then a TONE_HZ tone from that second
    to the end. (MP4 keeps durations in decoding order: with B-frames, uneven times would get wrong durations.)"""
    import av

    suffix = str(path).rsplit(".", 1)[-1]
    codec, sound = {"mp4": ("libx264", "aac"), "webm": ("libvpx-vp9", "libopus")}[suffix]
    tick = Fraction(1, 1000)
    end = end if end is not None else times[-1] + (times[-1] - times[-2] if len(times) > 1 else 0.1)
    with av.open(str(path), "w", options={"fflags": "+bitexact"}) as container:
        video = container.add_stream(codec, options={"bf": "0"} if codec == "libx264" else {})
        video.height, video.width = frames[0].shape[:2]
        video.pix_fmt, video.codec_context.time_base = "yuv420p", tick
        audio = container.add_stream(audio_codec or sound, rate=48000) if tone_at is not None else None
        if audio is not None:
            audio.layout = "mono"
        durations = {}
        for i, (t, image) in enumerate(zip(times, frames)):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = round(t * 1000), tick
            durations[frame.pts] = round(((list(times) + [end])[i + 1] - t) * 1000)
            for packet in video.encode(frame):
                packet.duration = durations.pop(packet.pts)
                container.mux(packet)
        for packet in video.encode():
            packet.duration = durations.pop(packet.pts)
            container.mux(packet)
        if audio is not None:
            rate = 48000
            n = round(end * rate)
            signal = np.zeros(n, np.float32)
            onset = round(tone_at * rate)
            signal[onset:] = 0.5 * np.sin(2 * np.pi * TONE_HZ * np.arange(n - onset) / rate)
            for k in range(0, n, 1024):
                chunk = av.AudioFrame.from_ndarray(signal[None, k:k + 1024], format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts, chunk.time_base = rate, k, Fraction(1, rate)
                container.mux(audio.encode(chunk))
            container.mux(audio.encode())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photo")
    parser.add_argument("output", help="a .mp4 or .webm")
    parser.add_argument("--size", default="320x180", help="WxH of the clip")
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--fps", type=float, default=24)
    parser.add_argument("--tone", type=float, default=None, help="a tone from this second on")
    args = parser.parse_args()
    size = tuple(int(n) for n in args.size.split("x"))
    with Image.open(args.photo) as photo:
        frames = film(photo.convert("RGB"), size, args.frames)
    write(args.output, frames, [i / args.fps for i in range(args.frames)], args.tone)


if __name__ == "__main__":
    main()
