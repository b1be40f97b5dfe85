"""Core types, array profiles, direction grids and the numba kernels (with their numpy references)."""
