"""Where the numba kernels run from: one extension module compiled ahead of time, else numba's JIT.

The kernels' code is numba code (``core/kernel_code.py``, ``verify/kernel_code.py``). Installing the
package compiles all of it, with the signatures of :data:`EXPORTS`, into one extension module,
``arraydaemon.core._kernels`` (numba's ahead-of-time compiler, ``numba.pycc``, run by ``setup.py``;
in a source checkout: ``python -m arraydaemon.core.compiled``). The running daemon then imports
neither numba nor llvmlite: ~100 MB of resident memory and ~0.4 s of every start (numba's import,
its type registries and its JIT; docs/research/lean-runtime.md). Where that module is absent (a
build without a C compiler, a checkout run in place) or was compiled for a processor with
instructions this one lacks, the same code runs under numba's JIT (cached on disk).

``ARRAYDAEMON_KERNELS``: ``auto`` (the default: compiled when usable, else JIT), ``compiled`` (an
error when it is not usable) or ``jit``.
"""

from __future__ import annotations

import importlib
import os
import platform

MODULE = "arraydaemon.core._kernels"
ENV = "ARRAYDAEMON_KERNELS"
CPU_ENV = "ARRAYDAEMON_KERNEL_CPU"  # at build time: the processor to compile for ("host", or "" for generic)

# Every kernel's one signature (numba's), by the module of its code. C-contiguous arrays; the
# wrappers make their operands so. Integers are int64 (intp on 64-bit platforms).
EXPORTS: dict[str, dict[str, str]] = {
    "arraydaemon.core.kernel_code": {
        "frames": "f8[:, :, ::1](f4[:, ::1], f8[::1], i8, i8)",
        "gcc_phat": "c8[:, ::1](c8[:, ::1], f8)",
        "srp_phat": "f4[::1](c8[:, ::1], i8, i8, f8, f8[:, ::1], i8)",
        "plane_srp": "f4[::1](c8[:, ::1], i8, i8, f8, f8[:, ::1], f8[:, ::1])",
        "climb_plane": "Tuple((f8[::1], f8))(c8[:, ::1], i8, i8, f8, f8[:, ::1], f8[::1], f8)",
        "masked_pair_sum": "c8[:, ::1](c8[:, :, ::1], i8[::1], i8[::1], b1[:, ::1], i8, i8)",
        "phase_agreement": "f4[:, ::1](c8[:, :, ::1], i8[::1], i8[::1], f8[::1], i8, i8, f8, f8)",
        "srp_lags_direct": "f4[:, ::1](c8[:, ::1], i8, i8, f4[:, ::1], f4[:, ::1])",
        "srp_interp": "f4[::1](f4[:, ::1], i4[:, ::1], f4[:, ::1])",
        "assign": "b1(f8[:, ::1], i8[::1])",
    },
    "arraydaemon.verify.kernel_code": {
        "tdoa_scores": "f8[::1](f8[:, ::1], f8[::1], i8[:, ::1], f8[:, ::1], f8[:, ::1], f8, f8, f8, f8, f8)",
        "srp_scores": "f4[:, ::1](f4[:, :, ::1], i8[:, ::1], i8[:, ::1], f8[:, ::1], i8)",
    },
}

# x86 instruction sets the compiled code may use, as LLVM and Linux's /proc/cpuinfo name them; the
# module records those of the processor it was compiled for (``build_features``, a bit mask).
X86_FEATURES = ("sse3", "ssse3", "sse4.1", "sse4.2", "popcnt", "avx", "avx2", "fma", "f16c", "bmi", "bmi2",
                "avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl")


class _Jit:
    """The JIT kernels of every code module under one set of names, as the compiled module has them;
    each code module imported at its first kernel's first use (``verify``'s only by ``profile verify``)."""

    _where = {name: module for module, names in EXPORTS.items() for name in names}

    def __getattr__(self, name: str):
        if name not in self._where:
            raise AttributeError(name)
        kernel = getattr(importlib.import_module(self._where[name]), name)
        setattr(self, name, kernel)
        return kernel


_loaded: dict[str, object] = {}


def kernels(backend: str | None = None):
    """The kernels (an object with every :data:`EXPORTS` name as an attribute) of ``backend``:
    ``"compiled"``, ``"jit"`` or ``"auto"``; None: ``$ARRAYDAEMON_KERNELS``, by default ``auto``."""
    backend = backend or os.environ.get(ENV, "auto") or "auto"
    if backend not in ("auto", "compiled", "jit"):
        raise ValueError(f"{ENV}: expected auto, compiled or jit, got {backend!r}")
    if backend == "auto":
        backend = "compiled" if compiled_problem() is None else "jit"
    if backend not in _loaded:
        if backend == "compiled":
            problem = compiled_problem()
            if problem is not None:
                raise ImportError(f"{ENV}=compiled: {problem}")
            _loaded[backend] = importlib.import_module(MODULE)
        else:
            _loaded[backend] = _Jit()
    return _loaded[backend]


def compiled_problem() -> str | None:
    """Why the compiled module cannot be used here (None: it can)."""
    try:
        module = importlib.import_module(MODULE)
    except ImportError as exc:
        return f"{MODULE} is not built ({exc}); build it with `python -m arraydaemon.core.compiled`"
    missing = [name for names in EXPORTS.values() for name in names if not hasattr(module, name)]
    if missing:
        return f"{MODULE} lacks {', '.join(missing)}: it was built from other code; build it again"
    lacking = feature_names(int(module.build_features()) & ~host_features())
    if lacking:
        return f"{MODULE} was compiled for instructions this processor lacks ({', '.join(lacking)})"
    return None


def feature_names(mask: int) -> list[str]:
    return [name for i, name in enumerate(X86_FEATURES) if mask >> i & 1]


def host_features() -> int:
    """This processor's :data:`X86_FEATURES` as a bit mask (every bit where it cannot be told: not
    Linux on x86, where the build's own processor is this one's kind)."""
    if platform.machine().lower() not in ("x86_64", "amd64") or not os.path.exists("/proc/cpuinfo"):
        return (1 << len(X86_FEATURES)) - 1
    flags: set[str] = set()
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    # /proc/cpuinfo: sse4_1, pni (sse3), abm (popcnt on some kernels) ...
    aliases = {"sse3": ("pni", "sse3"), "sse4.1": ("sse4_1",), "sse4.2": ("sse4_2",), "bmi": ("bmi1", "bmi")}
    mask = 0
    for i, name in enumerate(X86_FEATURES):
        if any(a in flags for a in aliases.get(name, (name,))):
            mask |= 1 << i
    return mask


# -- building (numba needed: at install, or in a checkout)


def _llvm_features(cpu: str) -> int:
    """The :data:`X86_FEATURES` the compiler may use for ``cpu`` ("host": this machine's)."""
    if cpu != "host" or platform.machine().lower() not in ("x86_64", "amd64"):
        return 0
    from llvmlite import binding

    have = binding.get_host_cpu_features()
    return sum(1 << i for i, name in enumerate(X86_FEATURES) if have.get(name, False))


def _constant(value: int):
    def build_features():
        return value
    return build_features


def compiler(output_dir: str | None = None):
    """numba's ahead-of-time compiler (``numba.pycc.CC``) with every kernel of :data:`EXPORTS` added,
    for this machine's processor (``$ARRAYDAEMON_KERNEL_CPU``: another LLVM processor name, or ""
    for the architecture's generic one, to build for other machines)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba.pycc's pending-deprecation notice
        from numba.pycc import CC

    importlib.import_module("arraydaemon.core.compiled")  # numba reads its path (also when run as __main__)
    # the extension is named after this module's package: arraydaemon.core._kernels
    cc = CC(MODULE.rsplit(".", 1)[1], source_module="arraydaemon.core.compiled")
    cpu = os.environ.get(CPU_ENV, "host")
    cc.target_cpu = cpu
    if output_dir is not None:
        cc.output_dir = output_dir
    cc.verbose = False
    exported = set()
    for module_name, signatures in EXPORTS.items():
        module = importlib.import_module(module_name)
        for kernel, signature in signatures.items():
            if kernel in exported:
                raise ValueError(f"kernel name {kernel!r} exported twice")
            exported.add(kernel)
            cc.export(kernel, signature)(getattr(module, kernel).py_func)
    cc.export("build_features", "i8()")(_constant(_llvm_features(cpu)))
    return cc


def extension():
    """The setuptools Extension that compiles the kernels (``setup.py``); optional: without a C
    compiler the install goes on, and the kernels run under numba's JIT."""
    ext = compiler().distutils_extension(optional=True)
    return ext


def main() -> None:
    """Builds the module in place, next to this file (a source checkout run without installing)."""
    here = os.path.dirname(os.path.abspath(__file__))
    compiler(here).compile()
    _loaded.clear()
    problem = compiled_problem()
    print(f"built {MODULE} in {here}" + (f"; but: {problem}" if problem else ""))


if __name__ == "__main__":
    main()
