"""The sha256 of a file's bytes, read in blocks: what keys, manifests, stores and fetched archives check."""

import hashlib


def file_sha256(path) -> str:
    """sha256 of the file at `path`, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
