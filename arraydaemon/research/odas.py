"""ODAS (introlab/odas), the peer the benchmarks measure against: its configuration written for an
array profile, a recording written as its raw input, ``odaslive`` run on it, and its tracked sources
(``sst``) read back.

ODAS is not part of this repository (MIT licence; build it from source: ``git clone
https://github.com/introlab/odas && cmake -S odas -B odas/build && make -C odas/build``, Debian
packages libfftw3-dev libconfig-dev libasound2-dev libpulse-dev) and is passed by path (``--odaslive``).
Its settings are the stock ones of its ``config/odaslive/matrix_creator.cfg`` (hop 128, frame 256, four
pots, scans at levels 2 and 4, the Kalman tracker, separation on), with file input and outputs; what
differs per array is the mic positions, the sample rate and, with ``directivity="geometry"``, the mics'
and the scan's directivity: ODAS's stock cone (80–100° around +z: the half-space above a horizontal
planar array) is kept for planar arrays (around their normal), and opened to the whole sphere for
linear and 3-D arrays, whose talkers may be below the array.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np

ODAS_MIC = """        {{ mu = ( {x:+.6f}, {y:+.6f}, {z:+.6f} );
          sigma2 = ( +0.000, +0.000, +0.000, +0.000, +0.000, +0.000, +0.000, +0.000, +0.000 );
          direction = ( {direction} ); angle = ( {angle} ); }}"""

# ODAS's stock settings (its config/odaslive/matrix_creator.cfg), with file input and outputs.
ODAS_CONFIG = """version = "2.1";
raw: {{ fS = {rate}; hopSize = 128; nBits = 32; nChannels = {channels};
        interface: {{ type = "file"; path = "{raw}"; }} }};
mapping: {{ map: ({mapping}); }};
general: {{
    epsilon = 1E-20;
    size: {{ hopSize = 128; frameSize = 256; }};
    samplerate: {{ mu = {rate}; sigma2 = 0.01; }};
    speedofsound: {{ mu = {c}; sigma2 = 25.0; }};
    mics = (
{mics}
    );
    spatialfilters = ( {{ direction = ( {direction} ); angle = ( {angle} ); }} );
    nThetas = 181;
    gainMin = 0.25;
}};
sne: {{ b = 3; alphaS = 0.1; L = 150; delta = 3.0; alphaD = 0.1; }};
ssl: {{
    nPots = 4; nMatches = 10; probMin = 0.5; nRefinedLevels = 1; interpRate = 4;
    scans = ( {{ level = 2; delta = -1; }}, {{ level = 4; delta = -1; }} );
    potential: {{ format = "json"; interface: {{ type = "file"; path = "{out}/ssl.json"; }}; }};
}};
sst: {{
    mode = "kalman"; add = "dynamic";
    active = ( {{ weight = 1.0; mu = 0.4; sigma2 = 0.0025 }} );
    inactive = ( {{ weight = 1.0; mu = 0.25; sigma2 = 0.0025 }} );
    sigmaR2_prob = 0.0025; sigmaR2_active = 0.0225; sigmaR2_target = 0.0025;
    Pfalse = 0.1; Pnew = 0.1; Ptrack = 0.8; theta_new = 0.9; N_prob = 5; theta_prob = 0.8;
    N_inactive = ( 250, 250, 250, 250 ); theta_inactive = 0.9;
    kalman: {{ sigmaQ = 0.001; }};
    particle: {{ nParticles = 1000; st_alpha = 2.0; st_beta = 0.04; st_ratio = 0.5; ve_alpha = 0.05;
                 ve_beta = 0.2; ve_ratio = 0.3; ac_alpha = 0.5; ac_beta = 0.2; ac_ratio = 0.2; Nmin = 0.7; }};
    target: ();
    tracked: {{ format = "json"; interface: {{ type = "file"; path = "{out}/sst.json"; }}; }};
}};
sss: {{
    mode_sep = "dds"; mode_pf = "ss"; gain_sep = 1.0; gain_pf = 10.0;
    dds: {{ }}; dgss: {{ mu = 0.01; lambda = 0.5; }}; dmvdr: {{ }};
    ms: {{ alphaPmin = 0.07; eta = 0.5; alphaZ = 0.8; thetaWin = 0.3; alphaWin = 0.3; maxAbsenceProb = 0.9;
           Gmin = 0.01; winSizeLocal = 3; winSizeGlobal = 23; winSizeFrame = 256; }};
    ss: {{ Gmin = 0.01; Gmid = 0.5; Gslope = 10.0; }};
    separated: {{ fS = {rate}; hopSize = 128; nBits = 16; interface: {{ type = "blackhole"; }}; }};
    postfiltered: {{ fS = {rate}; hopSize = 128; nBits = 16; gain = 10.0; interface: {{ type = "blackhole"; }}; }};
}};
classify: {{
    frameSize = 4096; winSize = 3; tauMin = 88; tauMax = 551; deltaTauMax = 20; alpha = 0.3; gamma = 0.05;
    phiMin = 0.5; r0 = 0.2;
    category: {{ format = "undefined"; interface: {{ type = "blackhole"; }} }};
}};
"""


STOCK_CONE = (80.0, 100.0)  # ODAS's stock mic and scan directivity: full gain within 80° of the axis
WHOLE_SPHERE = (180.0, 180.0)


def odas_config(profile, raw: Path, out: Path, directivity: str = "stock") -> str:
    """ODAS's configuration for ``profile``'s mics reading ``raw`` and writing ``out/ssl.json`` and
    ``out/sst.json``. ``directivity``: ``stock`` (ODAS's cone around +z) or ``geometry`` (the cone
    around a planar array's normal, the whole sphere for other arrays)."""
    axis, cone = (0.0, 0.0, 1.0), STOCK_CONE
    if directivity == "geometry":
        g = profile.geometry
        if g.kind == "planar" and g.normal is not None:
            n = np.asarray(g.normal, dtype=float)
            axis = tuple(n if n[2] >= 0 else -n)
        else:
            cone = WHOLE_SPHERE
    elif directivity != "stock":
        raise ValueError(f"directivity must be 'stock' or 'geometry', got {directivity!r}")
    direction = ", ".join(f"{v:+.6f}" for v in axis)
    angle = f"{cone[0]:.1f}, {cone[1]:.1f}"
    mics = ",\n".join(ODAS_MIC.format(x=x, y=y, z=z, direction=direction, angle=angle)
                      for x, y, z in np.asarray(profile.mics, dtype=float))
    return ODAS_CONFIG.format(rate=profile.sample_rate, channels=profile.num_mics, raw=raw, out=out,
                              mapping=", ".join(str(i + 1) for i in range(profile.num_mics)),
                              c=profile.speed_of_sound, mics=mics, direction=direction, angle=angle)


def raw_int32(audio: np.ndarray, path: Path) -> Path:
    """``audio [shape=(samples, mics)]`` float in [-1, 1] as interleaved little-endian int32 (ODAS's input)."""
    scaled = np.clip(np.round(audio.astype(np.float64) * 2**31), -2**31, 2**31 - 1).astype("<i4")
    path.write_bytes(np.ascontiguousarray(scaled).tobytes())
    return path


HOP = 128  # samples per ODAS frame (its stock hopSize)


def read_tracked(text: str) -> list[tuple[int, list[tuple[int, np.ndarray, float]]]]:
    """ODAS's ``sst.json`` (concatenated JSON objects, one per frame): ``(timeStamp, [(id, unit vector,
    activity), ...])`` per frame, the tracked sources only (id > 0). Raises ValueError naming what is wrong."""
    decoder = json.JSONDecoder()
    frames, pos = [], 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos == len(text):
            return frames
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise ValueError(f"ODAS tracked output: not JSON at character {exc.pos}") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("timeStamp"), int) or not isinstance(obj.get("src"), list):
            raise ValueError("ODAS tracked output: a frame without an integer timeStamp and a src list")
        sources = []
        for s in obj["src"]:
            if not isinstance(s, dict):
                raise ValueError(f"ODAS tracked output: frame {obj['timeStamp']}: a source that is not an object")
            try:
                sid, v, act = int(s["id"]), np.array([float(s["x"]), float(s["y"]), float(s["z"])]), float(s["activity"])
            except (KeyError, TypeError, ValueError):
                raise ValueError(f"ODAS tracked output: frame {obj['timeStamp']}: a source without numeric id, x, y, "
                                 "z, activity") from None
            scale = float(np.max(np.abs(v))) if np.all(np.isfinite(v)) else 0.0
            if sid > 0 and scale > 0 and np.isfinite(act):
                v = v / scale  # then the norm cannot overflow
                sources.append((sid, v / np.linalg.norm(v), act))
        frames.append((obj["timeStamp"], sources))


def run_odas(odaslive: str, profile, audio: np.ndarray, work: Path, directivity: str = "geometry",
             timeout: float = 600.0) -> list[tuple[int, list[tuple[int, np.ndarray, float]]]]:
    """``odaslive -s -c CFG`` on ``audio [shape=(samples, mics)]`` (float, [-1, 1]) under ``work``;
    its tracked sources per frame (:func:`read_tracked`)."""
    work.mkdir(parents=True, exist_ok=True)
    raw = raw_int32(audio, work / "input.raw")
    cfg = work / "odas.cfg"
    cfg.write_text(odas_config(profile, raw, work, directivity))
    done = subprocess.run([odaslive, "-s", "-c", str(cfg)], capture_output=True, text=True, timeout=timeout,
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{odaslive} exited {done.returncode}: {(done.stderr or done.stdout).strip()[-500:]}")
    return read_tracked((work / "sst.json").read_text())
