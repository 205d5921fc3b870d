"""Data sets: toy 2-D/3-D point clouds, user drawings and CSV uploads (later: image sets)."""
