"""Time gif_bytes on 30 realistic 512-px frames for each palette mode; print sizes and PSNR.

Run: .venv/bin/python bench/bench_gif.py   (one timed encode per mode, no warm-up runs)
"""

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dreamer.media.gif import gif_bytes  # noqa: E402
from dreamer.options import GifOptions  # noqa: E402


def dream_frames(n=30, size=512):
    """Frames fading the astronaut into a strongly recoloured, rippled 'dream' of it."""
    photo = Image.fromarray(data.astronaut()).resize((size, size), Image.Resampling.LANCZOS)
    a = np.asarray(photo, dtype=np.float32)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    ripples = np.stack(
        [np.sin(40 * x + 9 * np.sin(7 * y)), np.sin(37 * y + 8 * np.cos(9 * x) + 2), np.sin(30 * (x + y) + 3)],
        -1,
    )
    dream = np.clip(0.9 * a[..., [2, 0, 1]] + 110 * ripples + 20, 0, 255)
    t = np.linspace(0, 1, n, dtype=np.float32)[:, None, None, None]
    return list(np.round((1 - t) * a + t * dream).astype(np.uint8))


def mean_psnr(path, frames):
    """Mean PSNR (dB) of the GIF's decoded frames against the source frames."""
    scores = []
    with Image.open(path) as gif:
        for i, source in enumerate(frames):
            gif.seek(i)
            mse = np.mean((np.asarray(gif.convert("RGB"), dtype=np.float64) - source) ** 2)
            scores.append(10 * np.log10(255**2 / mse))
    return float(np.mean(scores))


def main():
    frames = dream_frames()
    with tempfile.TemporaryDirectory() as tmp:
        for palette in ("per-frame", "shared", "auto"):
            for dither in (False, True):
                path = Path(tmp, f"{palette}-{dither}.gif")
                start = time.perf_counter()
                info = gif_bytes(frames, GifOptions(palette=palette, dither=dither))
                seconds = time.perf_counter() - start
                path.write_bytes(info.data)
                psnr = mean_psnr(path, frames)
                print(f"palette={palette:9s} dither={dither!s:5s} {seconds * 1000:5.0f} ms  "
                      f"{len(info.data) / 1e6:5.2f} MB  {info.frames} frames  PSNR {psnr:5.2f} dB")


if __name__ == "__main__":
    main()
