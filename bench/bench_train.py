"""`dreamer train` on a few hundred images at 224 px: 150 paintings (art/paint.py's seeds) against 150 random
crops of scikit-image's photos, for each network asked (default effnet-lite0), on this machine: seconds to
read the images, seconds to train, epochs run, held-out accuracy.

Run: .venv/bin/python bench/bench_train.py [effnet-lite0 mobilenetv2 vgg16]
"""

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "art"))
sys.path.insert(0, str(ROOT / "tests"))
from paint import paint  # noqa: E402
from test_train import PHOTOS, crops  # noqa: E402

COUNT = 150


def main(networks):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["DREAMER_DATA"] = str(tmp / "data")
        (tmp / "art").mkdir()
        for seed in range(100, 100 + COUNT):
            paint(seed, 256).save(tmp / "art" / f"swirls-{seed}.png")
        crops(tmp / "photos", seed=0, per_photo=-(-COUNT // len(PHOTOS)), side=256)
        from dreamer.training import train

        print(f"{COUNT} paintings + {len(list((tmp / 'photos').iterdir()))} photo crops, 224 px, "
              f"{os.cpu_count()} CPUs")
        for network in networks:
            started = time.perf_counter()
            found = train(f"bench-{network}", tmp / "art", tmp / "photos", base=network, epochs=10,
                          progress=False).description
            total = time.perf_counter() - started
            print(f"{network:14} {total:6.0f} s in all (training {found['seconds']:.0f} s, {found['epochs']} epochs), "
                  f"held-out accuracy {found['held_out_accuracy']:.1%} on {found['held_out_images']} images "
                  f"(chance {found['chance']:.0%})")


if __name__ == "__main__":
    main(sys.argv[1:] or ["effnet-lite0"])
