"""``arraydaemon bench``: per-window time of each pipeline stage, and each numba kernel against its
numpy reference (:mod:`arraydaemon.core.reference`). Prints markdown tables.

Arrays are uniform circular arrays of 10 cm radius at 16 kHz (planar: 1° ring grid, plus the
off-plane scan rings), plus a 3-D row (two stacked rings, Fibonacci sphere of 2000 directions). The
audio is a broadband plane wave in bursts (200 ms on, 100 ms off, as syllables and words come and
go) with sensor noise, so every window holds an onset, is active and pays for the evidence tests'
detections, peak refinement and the search for further sources (a steady wave would be learned as
the room's stationary noise, ``stages/noise_field.py``, and set aside after a second); the publish
stage sends on a real ZeroMQ PUB socket bound to 127.0.0.1 (no subscriber). When the neural
estimator's weights are installed (``arraydaemon/data/neural.safetensors``) its rows follow, with
torch on one thread. Times are medians over windows, so a busy machine inflates them less than means
would; the p99 column shows the tail. Run it on one core with ``NUMBA_NUM_THREADS=1
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1`` (numpy's BLAS would otherwise give the references several
threads).
"""

from __future__ import annotations

import time

import numpy as np

from arraydaemon.core import kernels, reference
from arraydaemon.core.messages import AudioBlock
from arraydaemon.core.options import FeatureConfig, LocalizerConfig, PipelineOptions
from arraydaemon.core.paths import SHIPPED_WEIGHTS as NEURAL_WEIGHTS
from arraydaemon.core.profiles import ArrayProfile, parse_profile
from arraydaemon.pipeline import Pipeline
from arraydaemon.stages.features import hann

SAMPLE_RATE = 16000
RADIUS_M = 0.1


def circular_array(n_mics: int, radius: float = RADIUS_M, layers: int = 1) -> np.ndarray:
    """``n_mics`` positions ``[shape=(n_mics, 3)]`` on ``layers`` stacked, staggered rings."""
    per = n_mics // layers
    rows = []
    for layer in range(layers):
        count = per if layer < layers - 1 else n_mics - per * (layers - 1)
        z = (layer - (layers - 1) / 2) * radius
        a = 2 * np.pi * (np.arange(count) + 0.5 * layer) / count
        rows.append(np.stack([radius * np.cos(a), radius * np.sin(a), np.full(count, z)], axis=1))
    return np.concatenate(rows)


def bench_profile(n_mics: int, layers: int = 1) -> ArrayProfile:
    return parse_profile({"name": f"uca{n_mics}" + ("_3d" if layers > 1 else ""), "sample_rate": SAMPLE_RATE,
                          "mics": circular_array(n_mics, layers=layers).tolist()}, "bench")


def bench_audio(profile: ArrayProfile, seconds: float, seed: int = 0) -> np.ndarray:
    from arraydaemon.research.simulate import free_field_scene  # scipy; only the benchmark needs it here

    rng = np.random.default_rng(seed)
    n = int(seconds * profile.sample_rate)
    period, on = int(0.3 * profile.sample_rate), int(0.2 * profile.sample_rate)
    bursts = (np.arange(n) % period) < on
    signal = 0.1 * rng.standard_normal(n) * bursts
    return free_field_scene(profile.mics, [(signal, 60.0, 20.0)], profile.sample_rate, snr_db=20.0, rng=rng)


def lean_options() -> PipelineOptions:
    """SRP over the reference-mic pairs only, one source per window: the classic O(mics) SRP-PHAT."""
    return PipelineOptions(estimator="srp-phat", localizer=LocalizerConfig(pairs="reference", max_sources=1))


def time_pipeline(profile: ArrayProfile, seconds: float, publish: bool = True,
                  options: PipelineOptions | None = None) -> dict:
    """Median and p99 per-window milliseconds of each stage and of the whole pipeline."""
    from arraydaemon.io.publisher import ZmqPublisher

    publisher = ZmqPublisher("tcp://127.0.0.1:*") if publish else None
    try:
        pipeline = Pipeline(profile, options or PipelineOptions(estimator="srp-phat"), publisher)
        hop = pipeline.layout.hop_samples
        audio = bench_audio(profile, seconds + 1.0)
        warm = pipeline.process(AudioBlock(0, profile.sample_rate, 0.0, 0.0, audio[:profile.sample_rate]))
        assert warm, "warm-up produced no window"
        pipeline.timer = type(pipeline.timer)()  # forget the warm-up (JIT cache load)
        whole, active, start = [], 0, profile.sample_rate
        seq = 1
        while start + hop <= len(audio):
            block = AudioBlock(seq, profile.sample_rate, start / profile.sample_rate, 0.0, audio[start:start + hop])
            t0 = time.perf_counter()
            results = pipeline.process(block)
            whole.append(time.perf_counter() - t0)
            active += sum(bool(r.estimate.sources) for r in results)
            start += hop
            seq += 1
    finally:
        if publisher is not None:
            publisher.close()
    stages = {}
    for name in pipeline.timer.stages():
        arr = np.array(pipeline.timer.samples(name)) * 1e3
        stages[name] = (float(np.median(arr)), float(np.percentile(arr, 99)))
    arr = np.array(whole) * 1e3
    stages["pipeline"] = (float(np.median(arr)), float(np.percentile(arr, 99)))
    return {"stages": stages, "hop_ms": 1e3 * hop / profile.sample_rate, "windows": len(whole), "active": active,
            "directions": len(pipeline.localizer.grid),
            "scanned": len(pipeline.localizer.scan.points)}


def _median_time(fn, repeats: int) -> float:
    fn()  # warm-up (compilation / cache load)
    times = []
    budget = time.perf_counter() + 5.0  # the slowest references: cap each measurement at ~5 s
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if time.perf_counter() > budget and len(times) >= 5:
            break
    return float(np.median(times))


def kernel_cases(n_mics: int, seed: int = 0):
    """(name, shape text, kernel call, reference call) at the sizes of one 100 ms hop at 16 kHz
    (the window's STFT frames and, for the SRP-PHAT kernels, the localizer's pairs and scan)."""
    from arraydaemon.localizers.scan import SrpScan
    from arraydaemon.stages.features import FrameLayout

    lay = FrameLayout.from_config(FeatureConfig(), SAMPLE_RATE)
    rng = np.random.default_rng(seed)
    # what features.process frames per hop: the new hop plus the unframed tail of the last one
    signal = rng.standard_normal((lay.hop_samples + lay.n_fft - lay.frame_hop, n_mics)).astype(np.float32)
    window = hann(lay.n_fft)
    spec = kernels.stft(signal, window, lay.frame_hop)
    summed = np.ascontiguousarray((spec * np.conj(spec[:, :1])).sum(axis=0))  # every mic against mic 0
    gcc = kernels.gcc_phat(summed)
    profile = bench_profile(n_mics)
    from arraydaemon.core import grids

    dirs = grids.make_grid(profile.geometry).vectors
    tdoa = grids.tdoa_table(dirs, profile.relative_mics, profile.speed_of_sound)
    args_srp = (gcc, lay.band, lay.bin_hz, tdoa, 0)
    # the localizer's own operands: its pairs, a window of frames, its lag table and scan
    scan = SrpScan(profile, lay, LocalizerConfig())
    pi, pj = scan.pair_i, scan.pair_j
    frames = rng.standard_normal((lay.window_frames, n_mics, lay.bins, 2)).astype(np.float32).view(np.complex64)[..., 0]
    keep = rng.random((lay.window_frames, lay.bins)) < 0.5
    pair_gcc = kernels.gcc_phat(kernels.masked_pair_sum(frames, pi, pj, np.ones_like(keep), lay.band))
    up, lag = scan.upsample, scan.max_lag
    steering = kernels.lag_steering(lay.band, lay.n_fft, up, lag)
    table = kernels.srp_lags(pair_gcc, lay.band, up, lag)
    index, frac = scan.lookup
    mic_tdoa = scan.mic_tdoa(dirs[:1])[0]
    n_pairs, n_scan = len(pi), len(scan.points)
    # the refinement of a planar array: climb from a scan point near the peak of a pair spectrum
    start = grids.to_plane(scan.points[int(np.argmax(kernels.srp_interp(table, index, frac)))], scan.grid)
    climb = (pair_gcc, lay.band, lay.bin_hz, scan.plane_delays, start, scan.plane_step / 2)
    return [
        ("stft", f"{signal.shape} → {spec.shape}", lambda: kernels.stft(signal, window, lay.frame_hop),
         lambda: reference.stft(signal, window, lay.frame_hop)),
        ("gcc_phat", f"{summed.shape}", lambda: kernels.gcc_phat(summed), lambda: reference.gcc_phat(summed)),
        ("srp_phat", f"{len(dirs)} dirs × {n_mics} mics × {lay.band[1] - lay.band[0]} bins",
         lambda: kernels.srp_phat(*args_srp), lambda: reference.srp_phat(*args_srp)),
        ("masked_pair_sum", f"{frames.shape} → {n_pairs} pairs, half the bins",
         lambda: kernels.masked_pair_sum(frames, pi, pj, keep, lay.band),
         lambda: reference.masked_pair_sum(frames, pi, pj, keep, lay.band)),
        ("phase_agreement", f"{frames.shape}, {n_pairs} pairs",
         lambda: kernels.phase_agreement(frames, pi, pj, mic_tdoa, lay.band, lay.bin_hz),
         lambda: reference.phase_agreement(frames, pi, pj, mic_tdoa, lay.band, lay.bin_hz)),
        ("srp_lags", f"{n_pairs} pairs, ×{up}, ±{lag}", lambda: kernels.srp_lags(pair_gcc, lay.band, up, lag),
         lambda: reference.srp_lags(pair_gcc, lay.band, up, lag)),
        ("srp_lags_direct", f"{n_pairs} pairs, ×{up}, ±{lag}",
         lambda: kernels.srp_lags_direct(pair_gcc, lay.band, steering),
         lambda: reference.srp_lags(pair_gcc, lay.band, up, lag)),
        ("srp_interp", f"{n_scan} dirs × {n_pairs} pairs", lambda: kernels.srp_interp(table, index, frac),
         lambda: reference.srp_interp(table, index, frac)),
        ("climb_plane", f"{n_pairs} pairs, 3×3 patches", lambda: kernels.climb_plane(*climb),
         lambda: reference.climb_plane(*climb)),
    ]


def neural_available() -> bool:
    return NEURAL_WEIGHTS.is_file()


def run_benchmarks(mic_counts=(4, 8, 16, 32), seconds: float = 10.0, repeats: int = 200, three_d: bool = True,
                   out=print, neural: bool | None = None) -> dict:
    """Prints the stage table and the kernel table (markdown); returns the numbers. ``neural`` None:
    neural rows if the weights are installed."""
    mic_counts = [int(m) for m in mic_counts]
    if any(m < 2 for m in mic_counts):
        from arraydaemon.core.errors import UserError

        raise UserError(f"--mics: expected counts of at least 2, got {mic_counts}")
    # (mics, ring layers, variant): default SRP-PHAT settings for every count, the lean SRP for
    # comparison, then the neural estimator if its weights are installed
    configs = [(m, 1, "") for m in mic_counts] + ([(8, 2, "")] if three_d else [])
    configs += [(m, 1, "lean") for m in mic_counts if m == 8] + ([(8, 2, "lean")] if three_d else [])
    neural = neural_available() if neural is None else neural
    if neural:
        configs += [(m, 1, "neural") for m in mic_counts] + ([(8, 2, "neural")] if three_d else [])
    results = {}
    out(f"Per-window time, whole pipeline, 16 kHz, 250 ms windows every 96 ms, {seconds:g} s of audio "
        "per row; median (p99) ms. SRP-PHAT with default localizer settings (all pairs up to 8 mics, up "
        "to 4 sources), then the lean variant (SRP over the pairs with the reference mic only, one source "
        "per window)" + (", then the neural estimator (torch, 1 thread)" if neural else "") + ".\n")
    out("| array | grid | features | localizer | tracker | publish | whole pipeline | real-time factor |")
    out("|---|---|---|---|---|---|---|---|")
    for m, layers, variant in configs:
        profile = bench_profile(m, layers)
        options = {"": None, "lean": lean_options(), "neural": PipelineOptions(estimator="neural")}[variant]
        r = time_pipeline(profile, seconds, options=options)
        results[profile.name + (f"_{variant}" if variant else "")] = r
        s = r["stages"]

        def cell(k):
            return f"{s[k][0]:.3f} ({s[k][1]:.2f})"

        scanned = f"{r['scanned']} scanned" if r["scanned"] != r["directions"] else ""
        kind = ("ring" if layers == 1 else "sphere") + (f", {scanned}" if scanned and variant != "neural" else "")
        label = f"{m} mics, " + ("UCA r=10 cm" if layers == 1 else "2 rings (3-D)")
        label += {"": "", "lean": ", reference pairs, 1 source", "neural": ", neural"}[variant]
        out(f"| {label} | {r['directions']} ({kind}) | {cell('features')} | {cell('localizer')} | {cell('tracker')} "
            f"| {cell('publish')} | {cell('pipeline')} | {r['hop_ms'] / s['pipeline'][0]:.0f}× |")
    if not neural_available():
        out(f"\n(No neural rows: no weights at {NEURAL_WEIGHTS}; train them with `arraydaemon train`.)")
    out("\nKernels vs their numpy references (arraydaemon/core/reference.py) at one hop's sizes; median µs.\n")
    out("| kernel | mics | shape | numba µs | numpy µs | speed-up |")
    out("|---|---|---|---|---|---|")
    kernel_results = {}
    for m in mic_counts:
        for name, shape, fast, slow in kernel_cases(m):
            t_fast, t_slow = _median_time(fast, repeats), _median_time(slow, max(5, repeats // 4))
            kernel_results[(name, m)] = (t_fast, t_slow)
            out(f"| {name} | {m} | {shape} | {t_fast * 1e6:.1f} | {t_slow * 1e6:.1f} | {t_slow / t_fast:.1f}× |")
    results["kernels"] = kernel_results
    return results
