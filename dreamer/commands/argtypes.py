"""argparse types the commands share: bounded whole numbers and --batch."""

import argparse

from dreamer.engine.batching import check_batch


def whole_number(low: int, high: int, unit: str = ""):
    """An argparse type: a whole number (of `unit`) from `low` to `high`."""
    def parse(text: str) -> int:
        value = int(text) if text.strip().lstrip("-").isdigit() else None
        if value is None or not low <= value <= high:
            number = f"a whole number of {unit}" if unit else "a whole number"
            raise argparse.ArgumentTypeError(f"{text!r}: use {number} from {low} to {high}")
        return value

    return parse


def batch(text: str):
    """An argparse type: a batch size or auto (dreamer.engine.batching)."""
    try:
        return check_batch(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: use {exc}") from None
