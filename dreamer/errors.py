"""Errors that reach the user as one line: what went wrong, where, and the fix."""

import difflib


def closest(name: str, choices, otherwise: str) -> str:
    """The end of an error line about an unknown `name`: '; did you mean A, B?' with the `choices` closest to it,
    or '; ' + `otherwise` when none is close."""
    close = difflib.get_close_matches(name, list(choices), n=3)
    return f"; did you mean {', '.join(close)}?" if close else f"; {otherwise}"


class DreamerError(Exception):
    """Base of every error the CLI prints as one line, without a traceback."""


def one_line(exc: BaseException) -> str:
    """An exception as one line: DreamerErrors as they are, others with their type."""
    text = str(exc) if isinstance(exc, DreamerError) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())


class InputError(DreamerError):
    """An input image that cannot be used; the message names the file."""

    def __init__(self, path, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path = path


class StyleError(DreamerError):
    """An unknown or badly defined style, network or layer."""


class WeightsError(DreamerError):
    """Weights that are missing, cannot be downloaded, or fail their check."""


class BadWeightsFile(WeightsError):
    """A weights file whose records do not fit in it (damaged or crafted); the message names it and the fix."""

    def __init__(self, path, problem: str):
        super().__init__(f"{path}: {problem}; the file is damaged or crafted: get a fresh copy")


class ThemeError(DreamerError):
    """A template that fails to render, or that reaches outside Jinja2's sandbox; the message names its file."""
