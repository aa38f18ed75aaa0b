"""Paint `art/swirls.png`, the default gallery's style image: a seeded flow-field painting of thousands of
short brush strokes that follow swirling currents, in night blues, ochre and cream. Same seed, same pixels.

    python art/paint.py [--seed 7] [--size 768]
    python art/paint.py --many 80 --size 256 -o paintings/   # 80 more (seeds 100-179): art to train a network on
"""

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

PALETTE = np.array([(18, 32, 84), (32, 68, 148), (66, 120, 196), (120, 170, 220), (236, 200, 90),
                    (244, 150, 40), (250, 238, 196), (40, 110, 110)], float)


def flow(x, y, waves):
    """The stroke direction at (x, y) in [0, 1]^2: a sum of seeded sine waves, turned into swirls."""
    return sum(a * np.sin(fx * x * 2 * np.pi + fy * y * 2 * np.pi + phase) for a, fx, fy, phase in waves)


def paint(seed: int = 7, size: int = 768) -> Image.Image:
    rng = np.random.default_rng(seed)
    waves = [(rng.uniform(1, 2.5), rng.uniform(-2, 2), rng.uniform(-2, 2), rng.uniform(0, 2 * np.pi))
             for _ in range(5)]
    glow = [(rng.uniform(0.15, 0.85), rng.uniform(0.1, 0.6), rng.uniform(0.05, 0.12)) for _ in range(4)]  # moons
    canvas = Image.new("RGB", (size, size), tuple(PALETTE[0].astype(int)))
    draw = ImageDraw.Draw(canvas)
    for layer, (count, width, length) in enumerate([(1800, 9, 14), (4200, 5, 10), (6000, 3, 7)]):
        for _ in range(count):
            x, y = rng.uniform(0, 1, 2)
            moon = max(np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r)) for cx, cy, r in glow)
            depth = 0.55 * y + 0.45 * (0.5 + 0.5 * np.sin(flow(x, y, waves)))  # bands of colour
            index = 4 + int(rng.integers(0, 3)) if rng.uniform() < moon * 1.4 else int(depth * 3.99 + rng.uniform(0, 1))
            colour = PALETTE[min(index, len(PALETTE) - 1)] + rng.normal(0, 10, 3)
            points = [(x * size, y * size)]
            for _ in range(int(length * rng.uniform(0.6, 1.4))):  # follow the current
                angle = flow(x, y, waves) + (np.arctan2(y - glow[0][1], x - glow[0][0]) + np.pi / 2) * moon
                x, y = x + np.cos(angle) * 2.5 / size, y + np.sin(angle) * 2.5 / size
                points.append((x * size, y * size))
            draw.line(points, fill=tuple(np.clip(colour, 0, 255).astype(int)), width=width, joint="curve")
    return canvas.filter(ImageFilter.GaussianBlur(0.7))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--size", type=int, default=768)
    parser.add_argument("--many", type=int, metavar="N", help="paint N, seeds 100 to 100 + N - 1, into the folder -o")
    parser.add_argument("-o", "--output", default=str(Path(__file__).with_name("swirls.png")))
    args = parser.parse_args()
    if args.many:
        Path(args.output).mkdir(parents=True, exist_ok=True)
        for seed in range(100, 100 + args.many):
            paint(seed, args.size).save(Path(args.output) / f"swirls-{seed}.png", optimize=True)
        print(f"{args.many} paintings in {args.output}")
        return
    paint(args.seed, args.size).save(args.output, optimize=True)
    print(args.output)


if __name__ == "__main__":
    main()
