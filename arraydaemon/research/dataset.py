"""Training and evaluation data for the neural localizer: simulated rooms, random arrays.

Each scene draws an array geometry (3–16 mics: circles, lines, grids, irregular planar and 3-D
clusters, apertures 4–30 cm, or a bundled profile), a shoebox room (pyroomacoustics image sources,
RT60 0.1–1.0 s), 0–3 sources 0.5–4 m away at any azimuth and elevation −40°…60° (espeak-ng speech
in many voices, broadband and harmonic sounds), optionally a stationary directional machine-noise
interferer (fan, motor; 5–20 dB below the targets in RMS) that is *not* a target, diffuse and sensor
noise (SNR −5…30 dB). The scene is run through the daemon's own
feature stage and a few windows are kept, each with its token features (GCC-PHAT and energy-weighted
GCC per pair, and the raw-phase features of the input ablation), the clean GCC of the direct path
alone (the distillation target), and the true directions of the sources active in it.

Everything is deterministic from (split seed, scene index); scenes are cached in chunks of
``CHUNK`` scenes as .npz files, so generation can stop and resume.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from arraydaemon.core.messages import AudioBlock
from arraydaemon.core.options import FeatureConfig
from arraydaemon.core.profiles import available_profiles, load_profile_file, parse_profile
from arraydaemon.localizers.neural.tokens import (
    GROUPS,
    MAX_PAIRS,
    MAX_TOKEN_MICS,
    N_LAGS,
    PHASE_BINS,
    TOKEN_FEATURES,
    LagProjector,
    TokenPairs,
    clean_gcc_target,
    energy_tokens_from_cross,
    group_cross,
    tokens_from_cross,
    window_phases,
)
from arraydaemon.research import simulate
from arraydaemon.stages.features import FrameLayout, GccPhatFeatures

SAMPLE_RATE = 16000
MAX_MICS = 16
DATA_VERSION = 4  # chunk directories are per version: v1 reference-pair tokens only, v2 no energy tokens,
# v3 peak-normalised noise-burst interferers
MAX_SOURCES = 3
SCENE_S = 1.6
WINDOW_ENDS_S = (0.45, 0.6, 0.75, 0.9, 1.05, 1.2, 1.35, 1.5)
CHUNK = 50
KIND_CODES = {"3d": 0, "planar": 1, "linear": 2}
GEOMETRY_KINDS = ("circle", "circle_centre", "line", "grid", "irregular_planar", "cluster_3d", "rings_3d")
MOVER_SEGMENT_S = 0.2  # a walker is rendered as cross-faded static segments this long (12° steps at 60 °/s)
# Every segment needs its own room response: image sources to order 12 plus the exact-RT60 diffuse
# tail keep a walker's scene under a second (order 40 took up to 10 s).
MOVER_ISM_ORDER = 12
SPLIT_SEEDS = {"train": 1_000_000, "val": 5_000_000, "eval": 9_000_000}  # val: held-out loss, calibration


@dataclass(frozen=True)
class SceneRecipe:
    """What a scene draws. Stage 0 of the curriculum is clean single-source rooms, stage 1 the full
    mix (0–3 static sources, mostly one). Stage 2 is the several-talker fine-tune: mostly two or three
    simultaneous sources within 10 dB and as close as 15°, a third of them walking at 10–60 °/s (their
    label follows them window by window), and a machine noise (the fan of a robot, never a label) in
    half the rooms."""

    stage: int = 1

    def rt60(self, rng) -> float:
        return float(rng.uniform(0.1, 0.3) if self.stage == 0 else rng.uniform(0.1, 1.0))

    def snr_db(self, rng) -> float:
        return float(rng.uniform(20, 30) if self.stage == 0 else rng.uniform(-5, 30))

    def n_sources(self, rng) -> int:
        if self.stage == 0:
            return 1
        return int(rng.choice(4, p=[0.05, 0.15, 0.4, 0.4] if self.stage == 2 else [0.1, 0.55, 0.25, 0.1]))

    @property
    def min_separation_deg(self) -> float:
        return 15.0 if self.stage == 2 else 25.0

    @property
    def level_spread_db(self) -> float:
        """Sources' levels are drawn within this many dB of each other."""
        return 10.0 if self.stage == 2 else 6.0

    @property
    def interferer_prob(self) -> float:
        return 0.0 if self.stage == 0 else (0.5 if self.stage == 2 else 0.25)

    @property
    def speech_prob(self) -> float:
        return 0.85 if self.stage == 2 else 0.7

    def speed_dps(self, rng) -> float:
        """A source's angular speed (signed, °/s); 0 = standing still."""
        if self.stage != 2 or rng.random() >= 0.35:
            return 0.0
        return float(rng.uniform(10, 60) * rng.choice([-1, 1]))


def _min_spacing_ok(points: np.ndarray, spacing: float) -> bool:
    d = np.linalg.norm(points[:, None] - points[None], axis=-1) + np.eye(len(points))
    return bool(d.min() >= spacing)


def random_geometry(rng: np.random.Generator, kind: str | None = None) -> tuple[np.ndarray, str]:
    """A random array ``[shape=(mics, 3)]`` metres (3–16 mics, aperture 4–30 cm) and its kind."""
    kind = kind or str(rng.choice(GEOMETRY_KINDS))
    for _ in range(100):
        n = int(rng.integers(3, MAX_MICS + 1))
        aperture = float(rng.uniform(0.04, 0.30))
        r = aperture / 2
        if kind == "circle":
            ang = np.sort(rng.uniform(0, 2 * np.pi, n)) if rng.random() < 0.2 else np.arange(n) * 2 * np.pi / n
            pts = np.stack([r * np.cos(ang), r * np.sin(ang), np.zeros(n)], 1)
        elif kind == "circle_centre":
            ang = np.arange(n - 1) * 2 * np.pi / (n - 1)
            pts = np.concatenate([[[0, 0, 0]], np.stack([r * np.cos(ang), r * np.sin(ang), np.zeros(n - 1)], 1)])
        elif kind == "line":
            x = np.linspace(-r, r, n) + rng.normal(0, 0.1 * aperture / n, n)
            pts = np.stack([np.zeros(n), x, np.zeros(n)], 1)
        elif kind == "grid":
            cols = int(rng.integers(2, 5))
            rows = max(2, int(math.ceil(n / cols)))
            gx, gy = np.meshgrid(np.linspace(-r, r, cols), np.linspace(-r, r, rows) * rng.uniform(0.5, 1))
            pts = np.stack([gx.ravel(), gy.ravel(), np.zeros(gx.size)], 1)[:n]
        elif kind == "irregular_planar":
            pts = np.concatenate([rng.uniform(-r, r, (n, 2)), np.zeros((n, 1))], 1)
        elif kind == "cluster_3d":
            pts = rng.normal(0, r / 2, (n, 3))
            pts = pts * np.minimum(1.0, r / np.linalg.norm(pts, axis=1, keepdims=True))
        else:  # rings_3d: two stacked rings
            n = max(n, 4)
            half = n // 2
            ang = np.arange(n) * 2 * np.pi / half
            pts = np.stack([r * np.cos(ang), r * np.sin(ang), np.where(np.arange(n) < half, 0.0, rng.uniform(0.02, r))], 1)
        pts = pts - pts.mean(0)
        yaw = rng.uniform(0, 2 * np.pi)
        rot = np.array([[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]])
        pts = pts @ rot.T
        span = np.linalg.norm(pts[:, None] - pts[None], axis=-1).max()
        if len(pts) >= 3 and _min_spacing_ok(pts, 0.008) and 0.03 <= span <= 0.32:
            return pts, kind
    raise RuntimeError(f"could not draw a valid {kind} geometry")


@functools.lru_cache(maxsize=1)
def bundled_geometries() -> list[tuple[str, np.ndarray]]:
    """(name, mics) of every bundled profile."""
    from arraydaemon.core.profiles import BUNDLED_DIR

    out = []
    for name, path in sorted(available_profiles().items()):
        if path.parent == BUNDLED_DIR:
            out.append((name, load_profile_file(path).mics.copy()))
    return out


def geometry_profile(mics: np.ndarray, name: str = "sim"):
    """An ArrayProfile for simulated mics at 16 kHz."""
    return parse_profile({"name": name, "sample_rate": SAMPLE_RATE, "mics": mics.tolist()}, f"<{name}>")


def _separated_directions(rng, n: int, min_sep_deg: float = 25.0) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    while len(out) < n:
        az, el = float(rng.uniform(-180, 180)), float(rng.uniform(-40, 60))
        v = simulate.direction_vector(az, el)
        if all(np.degrees(np.arccos(np.clip(v @ simulate.direction_vector(*o), -1, 1))) >= min_sep_deg for o in out):
            out.append((az, el))
    return out


_NOMINAL_RMS = 0.1  # about a peak-normalised talker's active RMS: the interferer's reference when no target


def _active_rms(signal: np.ndarray, frame: int = 400) -> float:
    """RMS over the 25 ms frames where ``signal`` is within 30 dB of its loudest frame."""
    frames = signal[: len(signal) // frame * frame].reshape(-1, frame)
    power = np.mean(frames.astype(np.float64) ** 2, axis=1)
    active = power > power.max() * 1e-3
    return float(np.sqrt(power[active].mean())) if active.any() else 0.0


def machine_interferer(rng: np.random.Generator, targets: list[np.ndarray]) -> np.ndarray:
    """Stationary machine noise ``[shape=(SCENE_S * SAMPLE_RATE,)]`` 5–20 dB below the loudest dry
    target's active RMS (below a nominal talker's with no target). Levels are set in RMS: noise has a
    lower crest factor than speech, so at equal peaks it would sit only a few dB below the talker."""
    level = max((_active_rms(t) for t in targets), default=_NOMINAL_RMS)
    return simulate.stationary_noise_source(rng, SCENE_S, SAMPLE_RATE) * level * 10 ** (-rng.uniform(5, 20) / 20)


def _windows(profile, audio: np.ndarray, ends_s) -> list:
    feats = GccPhatFeatures(profile, FeatureConfig())
    windows = feats.process(AudioBlock(0, SAMPLE_RATE, 0.0, 0.0, audio.astype(np.float32)))
    picked = []
    for t in ends_s:
        picked.append(min(windows, key=lambda w: abs(w.t_end - t)))
    return picked


def _walk(az: float, el: float, speed_dps: float) -> list[tuple[float, float, float]]:
    """A walker's path (:func:`simulate.moving_sources_scene` waypoints): from ``(az, el)`` at a
    constant angular speed for the whole scene."""
    return [(0.0, az, el), (SCENE_S + 1.0, az + speed_dps * (SCENE_S + 1.0), el)]


def make_scene(split: str, index: int, stage: int = 1, geometry: np.ndarray | None = None,
               n_sources: int | None = None, rt60: float | None = None, snr_db: float | None = None,
               extras: bool = True) -> dict:
    """One scene: audio, truth and the kept windows' training arrays (packed by :func:`pack_scenes`).

    ``n_sources``, ``rt60``, ``snr_db`` override the recipe's draws; ``extras=False`` disables the
    interferer and diffuse noise (used for the dry-room evaluation).
    """
    rng = np.random.default_rng([SPLIT_SEEDS[split], index, stage])
    recipe = SceneRecipe(stage)
    if geometry is not None:
        mics, geo_kind = geometry, "given"
    elif rng.random() < 0.2:
        name, mics = bundled_geometries()[int(rng.integers(len(bundled_geometries())))]
        geo_kind = f"profile:{name}"
    else:
        mics, geo_kind = random_geometry(rng)
    profile = geometry_profile(mics)
    n_src = recipe.n_sources(rng) if n_sources is None else n_sources
    rt60 = recipe.rt60(rng) if rt60 is None else rt60
    snr = recipe.snr_db(rng) if snr_db is None else snr_db
    n = int(SCENE_S * SAMPLE_RATE)
    dirs = _separated_directions(rng, n_src + 1, recipe.min_separation_deg)
    specs, dry, movers, speeds = [], [], [], []
    for az, el in dirs[:n_src]:
        sig = (simulate.random_dry_source(rng, SCENE_S, SAMPLE_RATE, recipe.speech_prob)
               * 10 ** (rng.uniform(-recipe.level_spread_db, 0) / 20))
        dry.append(sig)
        distance = float(rng.uniform(0.5, 4.0))
        speeds.append(recipe.speed_dps(rng))
        if speeds[-1]:
            movers.append((sig, _walk(az, el, speeds[-1]), distance))
        else:
            specs.append(simulate.SourceSpec(sig, az, el, distance))
    interferer = extras and recipe.interferer_prob > 0 and rng.random() < recipe.interferer_prob
    if interferer:
        specs.append(simulate.SourceSpec(machine_interferer(rng, dry), dirs[-1][0], dirs[-1][1], float(rng.uniform(1.0, 4.0))))
    diffuse_db = float(rng.uniform(0, 30)) if (extras and stage > 0 and rng.random() < 0.5) else None
    if specs or movers:
        kwargs = dict(sample_rate=SAMPLE_RATE, rt60=rt60, snr_db=snr, rng=rng, diffuse_noise_db=diffuse_db)
        if movers:
            scene = simulate.moving_sources_scene(mics, movers, static_sources=specs, segment_s=MOVER_SEGMENT_S,
                                                  max_order=MOVER_ISM_ORDER, **kwargs)[0]
        else:
            scene = simulate.room_scene(mics, specs, **kwargs)
        audio = scene.audio
        true_dirs = list(dirs[:n_src]) if movers else [(a, e) for a, e, _ in scene.sources[:n_src]]
    else:  # noise only: diffuse plus sensor noise
        audio = 0.01 * simulate.diffuse_noise(mics, n, SAMPLE_RATE, rng)
        audio = audio + 0.01 * 10 ** (-rng.uniform(0, 20) / 20) * rng.standard_normal(audio.shape).astype(np.float32)
        true_dirs = []
    # Direct-path rendering of the target sources alone: the clean-GCC distillation target.
    # A walker's is its path segments in free field.
    direct = []
    for sig, speed, (a, e) in zip(dry, speeds, true_dirs):
        if not speed:
            direct.append((sig, a, e))
        else:
            segs, _ = simulate.path_segments(sig, _walk(a, e, speed), 1.0, SAMPLE_RATE, MOVER_SEGMENT_S)
            direct.extend((seg.signal, seg.azimuth_deg, seg.elevation_deg) for seg in segs)
    clean_audio = simulate.free_field_scene(mics, direct, SAMPLE_RATE) if direct else np.zeros_like(audio)
    windows = _windows(profile, audio[:n], WINDOW_ENDS_S)
    clean_windows = _windows(profile, clean_audio[:n], WINDOW_ENDS_S)
    projector = LagProjector.for_layout(FrameLayout.from_config(FeatureConfig(), SAMPLE_RATE))
    pairs = TokenPairs.for_array(mics, 0)
    hop = int(0.25 * SAMPLE_RATE)
    out = []
    for w, cw in zip(windows, clean_windows):
        end = int(round(w.t_end * SAMPLE_RATE))
        active = [float(np.sqrt(np.mean(s[max(0, end - hop):end] ** 2))) > 0.05 * float(np.sqrt(np.mean(s ** 2)) + 1e-12)
                  for s in dry]
        cross = group_cross(w.spectra, pairs, projector.span)
        row = {}
        if movers:  # every source's direction at the window's centre
            t_mid = w.t_end - 0.5 * hop / SAMPLE_RATE
            row["dirs"] = np.array([simulate.direction_vector(a + speed * t_mid, e)
                                    for speed, (a, e) in zip(speeds, true_dirs)]).reshape(-1, 3)
        out.append(row | {
            "tokens": tokens_from_cross(cross, projector),
            "energy": energy_tokens_from_cross(cross, projector),
            "phases": window_phases(w, projector, pairs),
            "clean": clean_gcc_target(cw, projector, pairs),
            "active": active,
            "level_db": w.level_db,
        })
    g = profile.geometry
    orient = g.normal if g.kind == "planar" else (g.axis if g.kind == "linear" else (0.0, 0.0, 0.0))
    return {
        "windows": out,
        "pair_pos": pairs.positions(profile.mics),
        "pair_slots": pairs.slots,
        "mics": mics,
        "dirs": np.array([simulate.direction_vector(a, e) for a, e in true_dirs]).reshape(-1, 3),
        "kind": KIND_CODES[g.kind],
        "orient": np.asarray(orient, dtype=np.float64),
        "rt60": rt60,
        "snr_db": snr,
        "interferer": interferer,
        "geometry": geo_kind,
        "audio": audio[:n],
        "window_ends": [w.t_end for w in windows],
        "speeds_dps": np.array(speeds),
        "diffuse_db": diffuse_db,
    }


def pack_scenes(scenes: list[dict], keep_audio: bool = False) -> dict[str, np.ndarray]:
    """Flatten scenes into fixed-shape window arrays (pairs padded to MAX_PAIRS, mics to MAX_TOKEN_MICS)."""
    rows = [(si, w) for si, s in enumerate(scenes) for w in s["windows"]]
    n = len(rows)
    arr = {
        "tokens": np.zeros((n, GROUPS, MAX_PAIRS, TOKEN_FEATURES), np.float16),
        "energy": np.zeros((n, GROUPS, MAX_PAIRS, TOKEN_FEATURES), np.float16),
        "phases": np.zeros((n, GROUPS, MAX_TOKEN_MICS, 2 * PHASE_BINS), np.float16),
        "pair_slots": np.zeros((n, MAX_PAIRS, 2), np.int8),
        "clean": np.zeros((n, MAX_PAIRS, N_LAGS), np.float16),
        "pair_mask": np.zeros((n, MAX_PAIRS), bool),
        "pair_pos": np.zeros((n, MAX_PAIRS, 2, 3), np.float32),
        "dirs": np.zeros((n, MAX_SOURCES, 3), np.float32),
        "dir_mask": np.zeros((n, MAX_SOURCES), bool),
        "kind": np.zeros(n, np.int8),
        "orient": np.zeros((n, 3), np.float32),
        "rt60": np.zeros(n, np.float32),
        "snr_db": np.zeros(n, np.float32),
        "interferer": np.zeros(n, bool),
        "level_db": np.zeros(n, np.float32),
        "scene": np.zeros(n, np.int32),
        "geometry": np.array([scenes[si]["geometry"] for si, _ in rows]),
    }
    for i, (si, w) in enumerate(rows):
        s = scenes[si]
        p = s["pair_pos"].shape[0]
        arr["tokens"][i, :, :p] = w["tokens"]
        arr["energy"][i, :, :p] = w["energy"]
        arr["phases"][i, :, :w["phases"].shape[1]] = w["phases"]
        arr["pair_slots"][i, :p] = s["pair_slots"]
        arr["clean"][i, :p] = w["clean"]
        arr["pair_mask"][i, :p] = True
        arr["pair_pos"][i, :p] = s["pair_pos"]
        k = len(s["dirs"])
        arr["dirs"][i, :k] = w.get("dirs", s["dirs"])
        arr["dir_mask"][i, :k] = w["active"]
        arr["kind"][i] = s["kind"]
        arr["orient"][i] = s["orient"]
        arr["rt60"][i] = s["rt60"]
        arr["snr_db"][i] = s["snr_db"]
        arr["interferer"][i] = s["interferer"]
        arr["level_db"][i] = w["level_db"]
        arr["scene"][i] = si
    return arr


def chunk_path(root: Path, split: str, stage: int, chunk: int) -> Path:
    return Path(root) / f"v{DATA_VERSION}" / f"{split}-stage{stage}" / f"chunk_{chunk:05d}.npz"


def generate_chunk(root: Path, split: str, stage: int, chunk: int, scenes_per_chunk: int = CHUNK) -> Path:
    """Generate (or find cached) chunk ``chunk`` of scenes ``chunk*scenes_per_chunk ..``; returns its path."""
    path = chunk_path(root, split, stage, chunk)
    if path.exists():
        return path
    scenes = [make_scene(split, chunk * scenes_per_chunk + i, stage) for i in range(scenes_per_chunk)]
    arr = pack_scenes(scenes)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arr)
    tmp.rename(path)
    return path


def load_chunks(paths: list[Path]) -> dict[str, np.ndarray]:
    parts = [dict(np.load(p)) for p in paths]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
