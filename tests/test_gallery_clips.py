"""Clips in a gallery: a video in inputs/ becomes a row of dreamed clips beside the source clip (MP4 + WebM + a
poster each, with the sound), keyed by the clip's bytes and the clip settings; clips of one style and frame size
dream together, each as it would alone; a clip that cannot be read fails its row only. In Debian's chromium: the
row's videos play, the slider scrubs every one of them, axe-core is clean."""

import functools
import http.server
import io
import json
import os
import shutil
import sys
import threading
from pathlib import Path

import av
import pytest
import test_site_browser
from conftest import REPO, check_site, make_tiny
from PIL import Image
from test_site_browser import _QuietHandler, wait_until
from test_site_video import AXE

from dreamer import gallery
from dreamer.gallery.manifest import Manifest, site_path
from dreamer.gallery.settings import ConfigError, load

sys.path.insert(0, str(REPO / "art"))
from camera import film, write  # noqa: E402

STYLE = "vgg16-textures"
TOML = f"""\
title = "Clips"
size = 64
styles = ["{STYLE}"]
[style.{STYLE}]
octaves = 1
steps = 2
every = 2
"""
FPS, FRAMES = 12, 6  # a clip of 0.5 s
browser = test_site_browser.browser  # the module's chromium (a fixture)


def film_clip(path: Path, photo: str = "chelsea.jpg", sound: bool = True, count: int = FRAMES) -> Path:
    """A camera panning over one of the repository's photos: `count` frames at FPS, 64x48, a tone from 0.1 s."""
    with Image.open(REPO / "inputs" / photo) as image:
        frames = film(image.convert("RGB"), (64, 48), count)
    write(path, frames, [i / FPS for i in range(count)], tone_at=0.1 if sound else None)
    return path


def build(folder: Path) -> gallery.Summary:
    return gallery.build(load(folder / "gallery.toml"), out=io.StringIO())


def statuses(summary) -> dict:
    return {j.photo.name: j.status for j in summary.jobs}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One photo and one clip, built once, under http://127.0.0.1:PORT/REPO/site/; tests change copies of it."""
    root = tmp_path_factory.mktemp("clips")
    folder = make_tiny(root / "REPO", TOML, photos=("coffee.jpg",))
    film_clip(folder / "inputs" / "pan.mp4")
    summary = build(folder)
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield folder, summary, f"http://127.0.0.1:{server.server_address[1]}/REPO/site/"
    server.shutdown()
    server.server_close()


@pytest.fixture
def copy(built, tmp_path):
    return Path(shutil.copytree(built[0], tmp_path / "gallery"))


def clip_entries(site: Path):
    manifest = json.loads((site / "manifest.json").read_text())
    render = next(e for e in manifest["renders"].values() if "clip" in e)
    photo = next(e for e in manifest["photos"].values() if "clip" in e)
    return render, photo


def probe(path: Path) -> dict:
    """A video's frames, length (the last frame's end) and whether it has sound, decoded by PyAV."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        end = max(float((f.pts + (f.duration or 0)) * f.time_base) for f in frames)
        return {"frames": len(frames), "length": end, "audio": bool(container.streams.audio),
                "size": (frames[0].width, frames[0].height)}


def test_a_clip_row_builds_beside_a_photo(built):
    folder, summary, _ = built
    assert summary.ok and statuses(summary) == {"coffee.jpg": "rendered", "pan.mp4": "rendered"}
    site = folder / "site"
    check_site(site)
    render, photo = clip_entries(site)
    assert "gif" not in render and set(render["videos"]) == {"webm", "mp4"} and render["clip"]["audio"] is True
    source = probe(folder / "inputs" / "pan.mp4")
    for name in (*render["videos"].values(), *photo["videos"].values()):
        video = probe(site / name)
        # as long as the source within a frame, every frame kept, the sound kept
        assert abs(video["length"] - source["length"]) <= 1 / FPS, (name, video, source)
        assert video["frames"] == FRAMES and video["audio"] and video["size"] == (64, 48), (name, video)
    for poster in (render["still"], photo["file"]):
        with Image.open(site / poster) as image:
            assert image.format == "JPEG" and image.size == (64, 48)
    page = next(site.glob("photo-pan-*.html")).read_text()
    assert page.count("<video") == 2 and 'data-length="0.5"' in page and "<script>" not in page
    # the dreamed clip differs from its source: it was dreamed
    with av.open(str(site / render["videos"]["mp4"])) as a, av.open(str(site / photo["videos"]["mp4"])) as b:
        dreamed, plain = (next(c.decode(video=0)).to_ndarray(format="rgb24").astype(int) for c in (a, b))
    assert abs(dreamed - plain).mean() > 2


def test_clips_of_one_style_and_frame_size_dream_together_as_each_alone(built, tmp_path, batched):
    """Two clips of one frame size (6 and 4 frames) render in one group, frame i of both in one batch; the longer
    one's files are those it made alone (the module's build), byte for byte."""
    folder = make_tiny(tmp_path, TOML, photos=())
    shutil.copyfile(built[0] / "inputs" / "pan.mp4", folder / "inputs" / "pan.mp4")
    film_clip(folder / "inputs" / "short.mp4", photo="rocket.jpg", count=4)
    summary = build(folder)
    assert summary.ok and statuses(summary) == {"pan.mp4": "rendered", "short.mp4": "rendered"}
    assert [len(call) for call in batched] == [2] * 4  # the last two frames of pan.mp4 dream alone
    manifests = [json.loads((site / "manifest.json").read_text()) for site in (folder / "site", built[0] / "site")]
    together, alone = ({k: e for k, e in m["renders"].items() if e["input"] == "pan.mp4"} for m in manifests)
    assert together.keys() == alone.keys()
    (entry,) = together.values()
    assert entry["clip"]["frames"] == FRAMES
    for name in (*entry["videos"].values(), entry["still"]):
        assert (folder / "site" / name).read_bytes() == (built[0] / "site" / name).read_bytes(), name


def test_a_second_build_reuses_the_clip(copy):
    summary = build(copy)
    assert summary.ok and (summary.rendered, summary.reused) == (0, 2)


def test_changed_clip_bytes_render_only_its_row(copy):
    old, _ = clip_entries(copy / "site")
    film_clip(copy / "inputs" / "pan.mp4", photo="rocket.jpg")
    summary = build(copy)
    assert summary.ok and statuses(summary) == {"coffee.jpg": "reused", "pan.mp4": "rendered"}
    new, _ = clip_entries(copy / "site")
    assert new["input_sha256"] != old["input_sha256"] and not (copy / "site" / old["videos"]["mp4"]).exists()


def test_clip_settings_are_in_its_key(copy):
    with open(copy / "gallery.toml", "a") as f:
        f.write("[clip]\nfps = 6\n")
    summary = build(copy)
    assert summary.ok and statuses(summary) == {"coffee.jpg": "reused", "pan.mp4": "rendered"}
    render, photo = clip_entries(copy / "site")
    assert render["clip"]["frames"] == photo["clip"]["frames"] == 3
    (copy / "gallery.toml").write_text(TOML + "[clip]\nfps = 500\n")
    with pytest.raises(ConfigError, match=r"clip\.fps"):
        load(copy / "gallery.toml")


def test_a_truncated_clip_fails_its_row_only(copy):
    clip = copy / "inputs" / "pan.mp4"
    clip.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    shutil.rmtree(copy / "site")
    summary = build(copy)
    assert statuses(summary) == {"coffee.jpg": "rendered", "pan.mp4": "failed"}
    (line,) = summary.failures
    assert "\n" not in line and "pan.mp4: " in line and "re-export it" in line, line  # the file and the fix
    manifest = check_site(copy / "site")  # the photo's row landed, nothing of the clip's
    assert not any("clip" in e for e in (*manifest["renders"].values(), *manifest["photos"].values()))
    assert {f.name.split(".")[0] for f in (copy / "site" / "renders").iterdir()} == set(manifest["renders"])


def test_an_animated_gif_row_keeps_a_gif(tmp_path):
    """An animated GIF is a clip too; its dreams get a GIF (a GIF source stays small) with the source's timings. A
    class style (it dreams toward a class, from static) skips a clip, saying so in its cell."""
    folder = make_tiny(tmp_path, TOML.replace(f'styles = ["{STYLE}"]', f'styles = ["{STYLE}", "effnet-lite0-class"]'),
                       photos=())
    with Image.open(REPO / "inputs" / "chelsea.jpg") as image:
        frames = [Image.fromarray(f) for f in film(image.convert("RGB"), (64, 48), 4)]
    durations = [100, 300, 100, 200]
    frames[0].save(folder / "inputs" / "anim.gif", save_all=True, append_images=frames[1:], duration=durations,
                   loop=0)
    summary = build(folder)
    assert summary.ok and [(j.style.name, j.status) for j in summary.jobs] == [(STYLE, "rendered"),
                                                                               ("effnet-lite0-class", "skipped")]
    page = next((folder / "site").glob("photo-anim-*.html")).read_text()
    assert "a class style dreams no clip" in page
    # the clip's card says how a clip dreams (steps = 2: a third of them a frame, at least 1), the class style's not
    assert page.count("from 0.95 of the dream before, moved with the clip, then 1 step at full size") == 1
    render, photo = clip_entries(folder / "site")
    with Image.open(folder / "site" / render["gif"]) as gif:
        assert [(gif.seek(i), gif.info["duration"])[1] for i in range(gif.n_frames)] == durations
    assert render["clip"] == {"length": 0.7, "frames": 4, "audio": False} == photo["clip"]
    assert abs(probe(folder / "site" / render["videos"]["webm"])["length"] - 0.7) <= 0.1


def test_the_manifest_accepts_exactly_a_clips_own_files(built, tmp_path):
    site = built[0] / "site"
    data = json.loads((site / "manifest.json").read_text())
    key = next(k for k, e in data["renders"].items() if "clip" in e)
    photo = next(k for k, e in data["photos"].items() if "clip" in e)
    assert all(site_path(name) for name in (f"renders/{key}.mp4", f"photos/{photo}.webm", f"photos/{photo}.mp4"))
    assert not site_path(f"photos/{photo}.gif") and not site_path(f"photos/{photo}-small.mp4")
    hostile = [("renders", key, "videos", {"mp4": f"renders/{key}.mp4", "webm": f"photos/{photo}.webm"}),
               ("renders", key, "videos", {"mp4": f"renders/{key}.mp4"}),  # a clip has both
               ("renders", key, "gif", f"renders/{key}.gif"),  # a GIF needs its bytes and frames recorded
               ("renders", key, "clip", {"length": 1.0}),
               ("photos", photo, "videos", {"mp4": f"photos/{photo}.mp4", "webm": f"renders/{key}.webm"}),
               ("photos", photo, "clip", None)]
    for section, name, field, value in hostile:
        changed = json.loads(json.dumps(data))
        changed[section][name][field] = value
        (tmp_path / "manifest.json").write_text(json.dumps(changed))
        loaded = Manifest.load(tmp_path / "manifest.json")
        assert name not in getattr(loaded, section) and len(loaded.problems) == 1, (field, value)
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    loaded = Manifest.load(tmp_path / "manifest.json")
    assert loaded.problems == [] and key in loaded.renders and photo in loaded.photos


# Every video of the page: its time, whether it plays, how far it has loaded, its length.
VIDEOS = """Array.from(document.querySelectorAll('video.dream-video')).map((v) => ({
  src: v.currentSrc.split('/').pop(), ready: v.readyState, paused: v.paused, time: v.currentTime,
  length: Number(v.dataset.length), frames: Number(v.dataset.frames), seeking: v.seeking}))"""


def test_the_clip_row_plays_and_the_slider_scrubs_it(browser, built):
    folder, _, base = built
    page = next((folder / "site").glob("photo-pan-*.html")).name
    since = len(browser.events)
    browser.open(base + page)
    wait_until(browser, "Array.from(document.querySelectorAll('video.dream-video')).every((v) => v.readyState >= 2)")
    videos = browser.evaluate(VIDEOS)
    assert len(videos) == 2 and {v["src"].split(".")[-1] for v in videos} == {"webm"}
    assert all(not v["paused"] for v in videos)
    # each plays on: its time moves
    stood = [v["time"] for v in videos]
    wait_until(browser, f"Array.from(document.querySelectorAll('video.dream-video')).every((v, i) => "
                        f"v.currentTime !== {json.dumps(stood)}[i])")
    positions = browser.evaluate("Number(document.querySelector('#scrub').max)") + 1
    assert positions == FRAMES
    for position in (0, 3, FRAMES - 1, 1):
        browser.evaluate(f"(() => {{ const s = document.querySelector('#scrub'); s.value = '{position}';"
                         " s.dispatchEvent(new Event('input')); return true; })()")
        wait_until(browser, "Array.from(document.querySelectorAll('video.dream-video')).every((v) => !v.seeking)")
        for v in browser.evaluate(VIDEOS):  # every video of the row at the slider's moment, paused there
            start, end = position * v["length"] / v["frames"], (position + 1) * v["length"] / v["frames"]
            assert v["paused"] and start <= v["time"] < end, (position, v)
    label = browser.evaluate("document.querySelector('#scrub-label').textContent")
    assert label == f"{0.5 / FRAMES:.1f} s of 0.5 s"
    browser.settle()
    assert browser.errors(since) == []


def test_axe_finds_no_serious_problem_on_the_clip_pages(browser, built):
    if not AXE.is_file():
        message = "axe-core is not installed: npm install --prefix .ci axe-core"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    folder, _, base = built
    for page in ("index.html", next((folder / "site").glob("photo-pan-*.html")).name):
        browser.open(base + page)
        browser.evaluate(AXE.read_text(encoding="utf-8") + "; true")
        result = browser.evaluate("axe.run(document, {resultTypes: ['violations']}).then((r) => r.violations"
                                  ".map((v) => ({id: v.id, impact: v.impact, nodes: v.nodes.length})))", timeout=60)
        serious = [v for v in result if v["impact"] in ("serious", "critical")]
        assert serious == [], f"{page}: {json.dumps(serious)}"
