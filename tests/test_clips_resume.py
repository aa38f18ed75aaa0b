"""Long clips: a render killed with SIGKILL resumes from the frames it kept and writes the same bytes as one never
stopped (a damaged kept frame is not trusted), and so does a gallery build killed midway through a clip row; memory
does not grow with the clip's length; the library's dream_clip and render_clip. Real processes, real weights, PyAV to
write and read the clips."""

import hashlib
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import av
import numpy as np
import pytest
from conftest import REPO, make_tiny
from test_clips import TINY, write_source
from test_gallery_clips import TOML, clip_entries

from dreamer import gallery
from dreamer.cli import main
from dreamer.dreaming.clip_checkpoints import Checkpoint
from dreamer.gallery.settings import load

FRAME_FILE = re.compile(r"^\d{6}\.[0-9a-f]{64}\.png$")


def kept_frames(root):
    """The frame files a render keeps under `root` ($DREAMER_CLIP_FRAMES), by name."""
    return sorted(p for p in root.rglob("*.png") if FRAME_FILE.match(p.name))


def killed_midway(command, frames_root) -> list:
    """Run `command` (a render of a 24-frame clip) and kill it (SIGKILL) once it has kept 4 frames under
    `frames_root`; the frames it kept."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    render = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while len(kept_frames(frames_root)) < 4:  # the first frames kept: kill it midway
            assert render.poll() is None, render.stderr.read().decode()
            time.sleep(0.01)
        render.send_signal(signal.SIGKILL)
        render.wait()
    finally:
        render.kill()
        render.stderr.close()
    kept = kept_frames(frames_root)
    assert 4 <= len(kept) < 24
    return kept


def test_a_killed_render_resumes_where_it_stopped_and_writes_the_same_bytes(tmp_path, monkeypatch, capsys):
    source = write_source(tmp_path / "pan.mp4", tone_at=0.5, count=24)
    frames_root = tmp_path / "kept"
    monkeypatch.setenv("DREAMER_CLIP_FRAMES", str(frames_root))
    whole = tmp_path / "whole" / "dream.mp4"
    assert main(["render", str(source), *TINY, "-o", str(whole)]) == 0
    assert not frames_root.exists() or not any(frames_root.rglob("*"))  # kept frames go once the clip is written

    out = tmp_path / "resumed" / "dream.mp4"
    kept = killed_midway([sys.executable, "-m", "dreamer", "render", str(source), *TINY, "-o", str(out)], frames_root)
    assert not out.exists()

    kept[-1].write_bytes(kept[-1].read_bytes()[:-10] + b"x" * 10)  # damaged: not trusted, dreamed again
    capsys.readouterr()
    assert main(["render", str(source), *TINY, "-o", str(out)]) == 0
    assert f"resuming at frame {len(kept)} of 24" in capsys.readouterr().err
    assert out.read_bytes() == whole.read_bytes()
    assert list(out.parent.iterdir()) == [out]  # the killed write's temp file is gone
    assert not any(frames_root.rglob("*.png"))


def decoded(path) -> list[str]:
    """The sha256 of each frame of a video or picture, decoded by PyAV."""
    with av.open(str(path)) as container:
        return [hashlib.sha256(frame.to_ndarray(format="rgb24").tobytes()).hexdigest()
                for frame in container.decode(video=0)]


def test_a_gallery_build_killed_midway_through_a_clip_resumes_it(tmp_path, monkeypatch, capsys):
    """build.py killed (SIGKILL) midway through a clip row: the next build dreams only the frames left, and the
    row's videos are an uninterrupted build's, byte for byte."""
    frames_root = tmp_path / "kept"
    monkeypatch.setenv("DREAMER_CLIP_FRAMES", str(frames_root))
    whole, resumed = (make_tiny(tmp_path / name, TOML, photos=()) for name in ("whole", "resumed"))
    write_source(whole / "inputs" / "pan.mp4", tone_at=0.5, count=24)
    shutil.copyfile(whole / "inputs" / "pan.mp4", resumed / "inputs" / "pan.mp4")
    assert gallery.build(load(whole / "gallery.toml"), out=io.StringIO()).ok

    build = [sys.executable, str(REPO / "build.py"), "--config", str(resumed / "gallery.toml")]
    kept = killed_midway(build, frames_root)
    assert not (resumed / "site" / "renders").exists() or not any((resumed / "site" / "renders").iterdir())

    dreamed = []  # the frames the second build dreams: each is kept as it is dreamed
    save = Checkpoint.save
    monkeypatch.setattr(Checkpoint, "save", lambda self, index, frame: (dreamed.append(index),
                                                                       save(self, index, frame)))
    capsys.readouterr()
    summary = gallery.build(load(resumed / "gallery.toml"), out=io.StringIO())
    assert summary.ok and summary.rendered == 1
    assert dreamed == list(range(len(kept), 24))
    assert f"pan.mp4 · vgg16-textures: resuming at frame {len(kept) + 1} of 24" in capsys.readouterr().err
    (render, _), (expected, _) = clip_entries(resumed / "site"), clip_entries(whole / "site")
    assert render["videos"].keys() == {"mp4", "webm"} and render["still"]
    assert render["videos"] == expected["videos"]
    for name in (*render["videos"].values(), render["still"]):
        assert decoded(resumed / "site" / name) == decoded(whole / "site" / name), name
        assert (resumed / "site" / name).read_bytes() == (whole / "site" / name).read_bytes(), name
    assert not any(frames_root.rglob("*.png"))  # kept frames go once the clip's files exist


PEAK = """
import resource, sys
import psutil
from dreamer import render_clip
rss = []
on_frame = lambda done, total: rss.append(psutil.Process().memory_info().rss)
render_clip(sys.argv[1], "vgg16-textures", sys.argv[2], size=32, octaves=1, steps=1, clip_steps=1, on_frame=on_frame)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, max(rss[49:]) - rss[49])
"""


def memory(source, out, tmp_path) -> tuple[int, int]:
    """(peak resident bytes, growth in resident bytes after the 50th frame) of a process that dreams `source` into
    `out`."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "DREAMER_CLIP_FRAMES": str(tmp_path / "kept")}
    done = subprocess.run([sys.executable, "-c", PEAK, str(source), str(out)], env=env, capture_output=True,
                          text=True, check=True)
    peak, growth = done.stdout.split()[-2:]
    return int(peak), int(growth)


def test_memory_does_not_grow_with_the_clip(tmp_path):
    """Peaks within 20 % at 50 and 500 frames (32 px, one step a frame: about 30 s). The peak is mostly the network
    (~0.9 GB), so also: frames 51 to 500 add under 1 % of it (measured 2 MB): a retrace a frame, or a reader or
    writer holding its frames or sound, would show; a 32-px frame kept each time (2 kB) would not."""
    peaks, growths = {}, {}
    for count in (50, 500):
        source = write_source(tmp_path / f"{count}.mp4", count=count, size=(48, 30))
        peaks[count], growths[count] = memory(source, tmp_path / f"dream-{count}.mp4", tmp_path)
    assert peaks[500] <= 1.2 * peaks[50], peaks
    assert growths[500] < 0.01 * peaks[500], (growths, peaks)


def test_the_library_dreams_a_clip_frame_by_frame_and_renders_one(tmp_path, monkeypatch):
    from dreamer import DreamerError, dream, dream_clip, render_clip

    monkeypatch.setenv("DREAMER_CLIP_FRAMES", str(tmp_path / "kept"))
    source = write_source(tmp_path / "pan.mp4", count=4)
    frames = list(dream_clip(source, "vgg16-textures", size=64, octaves=1, steps=2))
    assert [round(t, 3) for t, _ in frames] == [round(i / 12, 3) for i in range(4)]
    assert all(frame.shape == (40, 64, 3) and frame.dtype == np.uint8 for _, frame in frames)
    result = render_clip(source, "vgg16-textures", tmp_path / "dream.gif", size=64, octaves=1, steps=2)
    assert (result.frames, result.width, result.height) == (4, 64, 40)
    assert (tmp_path / "dream.gif").stat().st_size > 0
    with pytest.raises(DreamerError, match=r"pan.mp4: is a clip; dream it with dream_clip\(\) or render_clip\(\)"):
        next(dream(source, "vgg16-textures", size=64))


def test_a_video_among_photos_fails_on_one_line_saying_to_render_them_apart(tmp_path, capsys):
    video = write_source(tmp_path / "pan.mp4", count=2)
    photo = REPO / "inputs" / "coffee.jpg"
    out = tmp_path / "out"
    assert main(["render", str(photo), str(video), *TINY, "-o", f"{out}/"]) == 2
    assert capsys.readouterr().err == (f"error: {video} is a clip and {photo} a photo: render clips and photos in "
                                       "separate commands\n")
    assert not out.exists()
