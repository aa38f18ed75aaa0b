"""Pictures in and out: images read robustly (images), the GIF encoder (gif), the videos beside it (video), and
the mark that tells Dreamer's files from a user's (marks)."""
