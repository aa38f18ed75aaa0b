"""Tiles per network call: parsing the setting, and sizing `auto` from free accelerator memory."""

import pytest

from dreamer.engine.batching import CPU_AUTO_BATCH, MAX_AUTO_BATCH, MEMORY_SHARE, check_batch, resolve_batch, tiles_that_fit
from dreamer.cli import main
from test_engine import STYLE, prepare


@pytest.mark.parametrize("value, expected", [("auto", "auto"), (1, 1), ("8", 8), (256, 256)])
def test_batch_settings_that_are_valid(value, expected):
    assert check_batch(value) == expected


@pytest.mark.parametrize("value", [0, 257, "0", "many", 2.5, True, None])
def test_batch_settings_that_are_not(value):
    with pytest.raises(ValueError, match="1 to 256, or 'auto'"):
        check_batch(value)


def test_tiles_that_fit_use_a_share_of_the_free_memory():
    gib = 2**30
    assert tiles_that_fit(80 * gib, 2 * gib, cap=64) == int(80 * MEMORY_SHARE / 2)
    assert tiles_that_fit(80 * gib, 1 * gib) == MAX_AUTO_BATCH  # capped
    assert tiles_that_fit(1 * gib, 3 * gib) == 1  # never below one tile


def test_auto_on_a_cpu_dreams_photos_of_one_tile_together_and_a_number_is_kept():
    from dreamer.gallery.execute import photos_together as _photos_together

    stepper = prepare(STYLE).stepper
    assert CPU_AUTO_BATCH > 1 and _photos_together("auto") == CPU_AUTO_BATCH and _photos_together(3) == 3
    assert resolve_batch("auto", stepper, 320, 213, 512) == CPU_AUTO_BATCH
    assert resolve_batch("auto", stepper, 1024, 1024, 512) == 1  # a big photo's tiles one at a time: memory
    assert resolve_batch(6, stepper, 1024, 1024, 512) == 6


def test_bad_batch_on_the_command_line_is_one_line(capsys):
    with pytest.raises(SystemExit):
        main(["render", "noise", "--batch", "lots"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--batch" in err and "'lots'" in err and "auto" in err
