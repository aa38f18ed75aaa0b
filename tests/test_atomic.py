"""Atomic writes: all or nothing, readable by others, no temp files left behind."""

import os
import stat

import pytest

from dreamer.files.atomic import atomic_path, write_text


def test_write_is_complete_and_world_readable(tmp_path):
    target = tmp_path / "sub" / "page.html"
    write_text(target, "<p>hello</p>")
    assert target.read_text() == "<p>hello</p>"
    assert os.stat(target).st_mode & stat.S_IROTH
    assert os.listdir(target.parent) == ["page.html"]


def test_failure_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "x.weights.h5"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            assert tmp.name.endswith(".weights.h5")  # Keras insists on the suffix
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["x.weights.h5"]
