"""Writing files safely: atomic writes (atomic), what may never be written (safety), where Dreamer keeps its own
data and cache (paths)."""
