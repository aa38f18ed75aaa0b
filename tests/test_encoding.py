"""Encoding beside dreaming (dreamer.gallery.execute.Serial): a build's renders are encoded on a thread while the
next group dreams, with the bytes of encoding each before the next dream, results in order, and a render that fails
in encoding failing alone."""

import io
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from dreamer import dreaming
from dreamer.gallery import build
from dreamer.gallery.execute import Serial, _encoded_groups
from dreamer.gallery.settings import load
from dreamer.media.images import input_image

from conftest import TINY_TOML, check_site, hashes, make_tiny

GALLERY = TINY_TOML.replace('styles = ["vgg16-eyes", "vgg16-deep"]\n',
                            'styles = ["vgg16-eyes", "vgg16-deep"]\n[gif]\nlossy = 40\n[video]\nsmall = 48\n')


def renders(site) -> dict:
    """{name: sha256} of the renders' files and the photos of a site."""
    return {name: digest for name, digest in hashes(site).items() if name.startswith(("renders/", "photos/"))}


def test_a_render_failing_in_encoding_fails_alone_and_the_bytes_are_those_of_encoding_inline(tmp_path, monkeypatch):
    inline = make_tiny(tmp_path / "inline", GALLERY)
    assert build(load(inline / "gallery.toml"), out=io.StringIO(), executor=Serial(encoders=0)).ok
    expected = renders(inline / "site")
    assert sum(name.endswith((".webm", ".mp4")) for name in expected) == 4 * 4 and len(expected) == 2 + 4 * 6

    beside = make_tiny(tmp_path / "beside", GALLERY)
    cat = input_image(beside / "inputs" / "chelsea.jpg", 64)
    real_encode = dreaming.encode

    def encode(frames, style, *args):  # the cat's render in one style breaks in its encoder, on the pool's thread
        photo = frames[0]  # the first frame shows the photo
        if style.name == "vgg16-deep" and photo.shape == cat.shape and np.abs(photo - cat.astype(int)).mean() < 8:
            assert threading.current_thread() is not threading.main_thread()
            raise RuntimeError("the encoder broke")
        return real_encode(frames, style, *args)

    monkeypatch.setattr(dreaming, "encode", encode)
    summary = build(load(beside / "gallery.toml"), out=io.StringIO())
    assert (summary.rendered, summary.failed) == (3, 1)
    assert summary.failures == ["chelsea.jpg · vgg16-deep: RuntimeError: the encoder broke"]
    site = check_site(beside / "site")
    assert {(r["input"], r["style"]) for r in site["renders"].values()} == {
        ("chelsea.jpg", "vgg16-eyes"), ("coffee.jpg", "vgg16-eyes"), ("coffee.jpg", "vgg16-deep")}
    landed = renders(beside / "site")
    assert len(landed) == len(expected) - 6 and landed.items() <= expected.items()  # each render's own bytes

    monkeypatch.setattr(dreaming, "encode", real_encode)
    summary = build(load(beside / "gallery.toml"), out=io.StringIO())
    assert (summary.rendered, summary.reused, summary.failed) == (1, 3, 0)
    assert renders(beside / "site") == expected


def test_groups_come_back_in_order_once_few_enough_renders_are_left():
    """A later group encoded first waits for the one before it; the dreamer waits while over `most` are left."""
    first_may_end = threading.Event()
    with ThreadPoolExecutor(2) as pool:
        slow, quick = pool.submit(first_may_end.wait), pool.submit(lambda: "quick")
        quick.result()
        waiting = deque([(["a"], [slow, "an error line"]), (["b"], [quick])])
        assert list(_encoded_groups(waiting, most=1)) == [] and len(waiting) == 2  # one left: not over 1, a is not done
        threading.Timer(0.2, first_may_end.set).start()
        assert list(_encoded_groups(waiting, most=0)) == [(["a"], [True, "an error line"]), (["b"], ["quick"])]
        assert not waiting
