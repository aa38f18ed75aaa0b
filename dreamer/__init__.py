"""Dreamer: DeepDream GIF galleries."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # keep TensorFlow's start-up chatter out of the CLI

__version__ = "0.1.0"
# Bump when a change to the engine alters the pictures it makes: it is part of every render's key.
ENGINE_VERSION = "1"
