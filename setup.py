"""Compiles the numba kernels ahead of time into ``arraydaemon.core._kernels`` (``core/compiled.py``);
everything else is in pyproject.toml. Without numba or a C compiler the package installs without it,
and the kernels run under numba's JIT."""

import os
import sys

from setuptools import setup

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:
    from arraydaemon.core.compiled import extension

    ext_modules = [extension()]
except ImportError as exc:  # numba absent from the build environment
    print(f"arraydaemon: kernels not compiled ahead of time ({exc}); numba's JIT will run them", file=sys.stderr)
    ext_modules = []

setup(ext_modules=ext_modules)
