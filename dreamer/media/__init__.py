"""Pictures in and out: images read robustly (images), the GIF encoder (gif), the videos beside it (video), clips
read as timed frames (clips) and dreamed clips written with their sound (clip_writer), and the mark that tells
Dreamer's files from a user's (marks)."""
