"""Where the package's shipped files are: one place, importable without numpy or torch."""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = PACKAGE_DIR / "data"  # demo recording, shipped weights, model card
SHIPPED_WEIGHTS = DATA_DIR / "neural.safetensors"
SHIPPED_GRAPH = DATA_DIR / "neural.onnx"  # their exported forward, what the daemon runs (no torch)
# Installed wheels carry the repository's top-level array_profiles/ inside the package; a source
# checkout or an editable install reads it in place.
BUNDLED_PROFILES_DIR = next(
    (d for d in (PACKAGE_DIR / "array_profiles", PACKAGE_DIR.parent / "array_profiles") if d.is_dir()),
    PACKAGE_DIR / "array_profiles",
)
# Rendered scenes of the tracking benchmark (minutes to render, so kept between runs).
TRACKING_CACHE = Path.home() / ".cache" / "arraydaemon" / "tracking-scenes"
