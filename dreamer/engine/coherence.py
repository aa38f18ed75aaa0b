"""Temporal coherence for clips, on uint8 RGB frames as numpy arrays: optical flow between two frames (OpenCV's DIS,
no weights), warping by it, where the flow can be trusted (the forward-backward consistency and motion-boundary
tests of Ruder, Dosovitskiy and Brox 2016), carrying a dream's detail onto the next frame, and the warping error
of Lai et al. 2018 that measures flicker. Flows are computed on the source frames, never on dreams."""

import cv2
import numpy as np


def flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Optical flow from frame `a` to frame `b` (uint8 H x W x 3): float32 (H, W, 2), where each pixel x of `a` is
    in `b`: at x + flow[x] (dx, dy)."""
    grey = [np.ascontiguousarray(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY)) for f in (a, b)]
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(grey[0], grey[1], None)


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """`image` sampled at x + flow[x] for each pixel x (bilinear; beyond the edge, the edge): a picture of the
    frame `flow` leads to, moved onto the frame it leads from."""
    height, width = flow.shape[:2]
    grid = np.mgrid[0:height, 0:width].astype(np.float32)
    return cv2.remap(image, grid[1] + flow[..., 0], grid[0] + flow[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def reliable(flow: np.ndarray, reverse: np.ndarray) -> np.ndarray:
    """Where `flow` (a -> b) can be trusted, given `reverse` (b -> a): float32 (H, W), 1 or 0. Ruder et al.'s
    tests: occluded where the way there and back does not return, |w + ŵ|² > 0.01 (|w|² + |ŵ|²) + 0.5 (ŵ the
    reverse flow where w leads); a motion boundary where |∇u|² + |∇v|² > 0.01 |w|² + 0.002. Pixels that w takes
    out of the frame are not reliable either."""
    back = warp(reverse, flow)
    there = np.sum(flow ** 2, axis=2)
    occluded = np.sum((flow + back) ** 2, axis=2) > 0.01 * (there + np.sum(back ** 2, axis=2)) + 0.5
    gradients = sum(np.sum(np.stack(np.gradient(flow[..., c]), axis=-1) ** 2, axis=-1) for c in range(2))
    boundary = gradients > 0.01 * there + 0.002
    height, width = flow.shape[:2]
    grid = np.mgrid[0:height, 0:width].astype(np.float32)
    x, y = grid[1] + flow[..., 0], grid[0] + flow[..., 1]
    outside = (x < 0) | (x > width - 1) | (y < 0) | (y > height - 1)
    return (~(occluded | boundary | outside)).astype(np.float32)


def carried(dream: np.ndarray, source: np.ndarray, next_source: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """The start of the next frame's dream: `next_source` plus `strength` times the detail dreamed into `source`
    (`dream` - `source`), moved along the flow between the two source frames and kept only where that flow is
    reliable, so that what comes into view starts from the raw frame. uint8 H x W x 3."""
    backward, forward = flow(next_source, source), flow(source, next_source)
    detail = dream.astype(np.float32) - source.astype(np.float32)
    moved = warp(detail, backward) * reliable(backward, forward)[..., None]
    return np.clip(np.rint(next_source + strength * moved), 0, 255).astype(np.uint8)


def warping_error(outputs, sources) -> float:
    """Lai et al. 2018's warping error of `outputs` (uint8 frames) made from `sources` (the frames they were made
    from): for each pair, the flow F (t -> t+1) and its reliable mask M from the sources; E_t = Σₓ M(x) Σ_c
    (O_t(x) - O_t+1(x + F(x)))² / Σₓ M(x) on RGB in [0, 1]; their mean over the pairs."""
    errors = []
    for a, b, out_a, out_b in zip(sources, sources[1:], outputs, outputs[1:]):
        forward, backward = flow(a, b), flow(b, a)
        mask = reliable(forward, backward)
        difference = out_a.astype(np.float32) / 255 - warp(out_b.astype(np.float32) / 255, forward)
        errors.append(float(np.sum(mask * np.sum(difference ** 2, axis=2)) / max(np.sum(mask), 1.0)))
    return float(np.mean(errors))
