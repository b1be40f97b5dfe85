"""Tests of arraydaemon.core: kernels, profiles, grids."""
