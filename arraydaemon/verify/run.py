"""``verify_recording``: every check of :mod:`arraydaemon.verify` on one recording, in order.

1. Per channel, from the samples: level, DC, clipping, silent or constant channels
   (:mod:`.channels`); against the other mics: far too quiet (dead) or off in gain.
2. The STFT of every channel that is not silent, its active windows and the GCC-PHAT of every
   pair of those channels (:mod:`.pairs`).
3. Mics that hear nothing the others hear (dead), duplicated channels, inverted channels (the
   pairs' GCC signs); inverted channels are turned upright for what follows.
4. Arrival times (map-free) and the channel-order search over the channels still standing
   (:mod:`.order`); mics whose declared channel is dead or a duplicate sit it out.
5. With the map in use (the declared one, or the best when the declared one is wrong): the
   pairs' delays (:mod:`.delays`), the diffuse-noise distances (:mod:`.coherence`) and the size of
   the geometry (:mod:`.scale`); the sample rate (:mod:`.rate`).
6. The report (:mod:`.report`).
"""

from __future__ import annotations

import time

import numpy as np

from arraydaemon.core.errors import SourceError
from arraydaemon.core.profiles import ArrayProfile
from arraydaemon.verify import channels as chk
from arraydaemon.verify import coherence, delays, order, pairs, rate, scale
from arraydaemon.verify.recording import Recording
from arraydaemon.verify.report import MAX_ROTATION_DEG, Report, channel_problem_text

REACH_FACTOR = 2.0  # arrival times: GCC peaks within this many times the array's largest delay (+2 samples)


def _silence_error(rec: Recording, reports: list[chk.ChannelReport]) -> SourceError:
    loudest = max(r.level_db for r in reports)
    what = "every channel is digital silence" if loudest < -200 else f"the loudest channel is at {loudest:.0f} dBFS"
    return SourceError(f"{rec.where}: silence only ({what}): nothing to verify; record someone talking while "
                       "walking around the array")


def verify_recording(rec: Recording, profile: ArrayProfile, source_azimuth: float | None = None) -> Report:
    """Verify ``profile`` against ``rec`` (all of the device's channels, at the profile's rate)."""
    t0 = time.perf_counter()
    fs, speed = profile.sample_rate, profile.speed_of_sound
    max_delay = profile.geometry.max_tdoa_s
    layout = pairs.make_layout(fs, max_delay)
    col_of = {int(ch): col for col, ch in enumerate(rec.device_channels)}
    mic_cols = np.array([col_of[ch] for ch in profile.channel_map], dtype=np.intp)

    # 1. per channel, from the samples
    frames = pairs.stft_frames(rec.samples, layout)
    if frames.spec.shape[0] < pairs.WINDOW_FRAMES:
        raise SourceError(f"{rec.where}: {rec.duration_s:.2f} s is too short to verify anything (record 20 s)")
    inband = frames.power.mean(axis=0) * pairs.power_scale(layout)
    reports = chk.signal_stats(rec.samples, rec.device_channels, profile.channel_map, inband)
    if all("dead" in r.problems for r in reports):
        raise _silence_error(rec, reports)
    chk.level_checks(reports)
    live = np.array([c for c in range(rec.channels) if "dead" not in reports[c].problems], dtype=np.intp)
    live_mics = np.array([c for c in mic_cols if c in set(live.tolist())], dtype=np.intp)
    if not len(live_mics):
        raise _silence_error(rec, reports)

    # 2. windows and pairs
    starts, levels, floor = pairs.active_windows(frames, live_mics)
    obs = pairs.observe_pairs(frames, live, starts, levels)
    reach = REACH_FACTOR * max_delay + 2.0 / fs

    # 3. deaf, duplicated and inverted channels
    is_mic = np.isin(live, mic_cols)
    strength = chk.pair_strength(obs.tables, int(np.ceil(reach * layout.lag_rate)), layout.max_lag)
    deaf = chk.deaf_channels(strength, obs.pair_a, obs.pair_b, len(live), is_mic)
    for k in np.flatnonzero(deaf):
        reports[live[k]].add("dead", "hears nothing the other mics hear")
    dup_second: set[int] = set()
    for a, b, corr in chk.duplicate_pairs(obs.tables, layout.max_lag, rec.samples[:, live], obs.pair_a, obs.pair_b):
        for k, other in ((a, b), (b, a)):
            if is_mic[k] or is_mic[other]:
                reports[live[k]].add("duplicate", f"same signal as channel {int(rec.device_channels[live[other]])} "
                                                  f"(correlation {corr:+.3f})")
        dup_second.add(b)
    usable = np.array([k for k in range(len(live)) if not deaf[k] and k not in dup_second], dtype=np.intp)
    pol_reach = np.full(len(obs.pair_a), int(np.ceil((1.2 * max_delay + 1.0 / fs) * layout.lag_rate)))
    votes = chk.polarity_votes(obs.tables, pol_reach, layout.max_lag)
    keep_pairs = ~(deaf[obs.pair_a] | deaf[obs.pair_b])
    signs = chk.solve_signs(np.where(keep_pairs, votes, 0.0), obs.pair_a, obs.pair_b, len(live), is_mic & ~deaf)
    for k in np.flatnonzero(signs < 0):
        if not deaf[k]:
            reports[live[k]].add("polarity", "inverted against the other mics")
    flip = (signs[obs.pair_a] * signs[obs.pair_b]).astype(np.float32)
    obs.tables *= flip[None, :, None]

    # 4. arrival times and the channel order
    cand = obs.subset(usable)
    sigma = order.SIGMA_SAMPLES / fs
    times = order.arrival_times(cand, reach, sigma)
    cand_index = {int(col): k for k, col in enumerate(cand.channels)}
    searched = [m for m in range(profile.num_mics) if int(mic_cols[m]) in cand_index]
    geo = order.MapGeometry.build(profile.mics[searched], speed) if len(searched) >= 2 else None
    declared_cols = np.array([cand_index[int(mic_cols[m])] for m in searched], dtype=np.intp)
    device_of = lambda cols: [int(rec.device_channels[c]) for c in cols]
    if geo is not None and len(searched) >= 3:
        res = order.check_order(cand, times, geo, searched, declared_cols, sigma, source_azimuth)
    else:
        res = order.OrderResult("undetermined", searched, device_of(mic_cols[searched]),
                                reason="fewer than 3 working mics")
    # check_order speaks in recording columns (cand.channels); the report in device channels
    res.declared = device_of(res.declared)
    if res.best is not None:
        res.best = device_of(res.best)
    res.ambiguous = [device_of(m) for m in res.ambiguous]

    def full_map(partial: list[int]) -> list[int]:
        out = list(profile.channel_map)
        for m, ch in zip(searched, partial):
            out[m] = ch
        return out

    suggested = full_map(res.best) if res.status == "wrong" and res.best is not None else None
    ambiguous = [full_map(m) for m in res.ambiguous]
    in_use = res.best if res.status == "wrong" and res.best is not None else res.declared
    use_cols = np.array([cand_index[col_of[ch]] for ch in in_use], dtype=np.intp)

    # 5. pairs, coherence, size, rate
    quiet = pairs.noise_frames(frames, live_mics)
    mic_live = [m for m in range(profile.num_mics) if int(mic_cols[m]) in set(live.tolist())]
    live_pos = {int(c): k for k, c in enumerate(live)}
    pa, pb = obs.pair_a, obs.pair_b
    upright = frames.spec[:, live] * signs.astype(np.float32)[None, :, None]
    coh = coherence.coherence_fit(pairs.Frames(layout, upright, frames.power[:, live]), quiet, pa, pb,
                                  speed, max(1.5 * profile.geometry.aperture_m, 0.05),
                                  use=is_mic[pa] & is_mic[pb] & ~deaf[pa] & ~deaf[pb])
    coh_by_cols = {(int(live[a]), int(live[b])): float(d) for a, b, d in zip(pa, pb, coh.distance)}
    if obs.n_windows < order.MIN_WINDOWS and not np.isfinite(coh.distance).any():
        loudest = max(r.level_db for r in reports if r.mic is not None)
        raise SourceError(f"{rec.where}: no sound to verify with (steady noise, loudest mic at {loudest:.0f} dBFS, "
                          "no talker and no diffuse room noise): record someone talking while walking around the array")
    times_live = order.arrival_times(obs, reach, sigma)
    declared_live_cols = {m: live_pos[int(mic_cols[m])] for m in mic_live}
    pair_reps = delays.pair_reports(obs, times_live, profile.mics, declared_live_cols, speed, coh)
    ratios = []
    for i in range(len(searched)):
        for j in range(i + 1, len(searched)):
            ca, cb = sorted((int(cand.channels[use_cols[i]]), int(cand.channels[use_cols[j]])))
            d_decl = float(np.linalg.norm(profile.mics[searched[i]] - profile.mics[searched[j]]))
            d_coh = coh_by_cols.get((ca, cb), np.nan)
            if d_decl <= scale.COHERENCE_MAX_M and np.isfinite(d_coh):
                ratios.append(d_coh / d_decl)
    size = (scale.scale_check(times, geo, use_cols, sigma, cand.pair_index(), ratios)
            if geo is not None and len(searched) >= 3
            else scale.ScaleResult("unknown", message="fewer than 3 working mics"))
    active_frames = (starts[:, None] + np.arange(pairs.WINDOW_FRAMES)[None]).ravel() if len(starts) else starts
    rates = rate.rate_check(fs, rec.file_rate, frames, active_frames, obs.subset(np.flatnonzero(is_mic)),
                            max_delay)

    # 6. the verdict
    warnings: list[str] = []
    problems = [channel_problem_text(r) for r in reports if r.mic is not None and r.problems]
    if rates.problems:  # samples counted at the wrong rate: order, size and pairs mean nothing
        res.status, res.reason = "undetermined", "the delays are off by the sample rate (see above)"
        suggested, ambiguous = None, []
    elif res.status == "wrong":
        problems.append(f"channel order: the recording fits channel_map {suggested}, not the declared "
                        f"{list(profile.channel_map)}")
    elif res.status == "undetermined":
        problems.append(f"channel order not verified: {res.reason}")
    if size.status in ("too_small", "too_large") and not rates.problems:
        problems.append(f"geometry: {size.message}")
    if res.status == "consistent" and size.status in ("ok", "unknown"):
        for p in pair_reps:
            if "exceeds" in p.problems:
                problems.append(f"mic pair {p.mics} on channels {p.channels}: delays up to "
                                f"{p.max_observed_delay_s * 1e6:.0f} µs, its declared {p.declared_m * 100:.1f} cm "
                                f"allow {p.allowed_delay_s * 1e6:.0f} µs (positions wrong, or mics on swapped channels)")
    normal = profile.geometry.normal
    measures_azimuth = profile.geometry.kind == "3d" or (normal is not None and abs(normal[2]) > 0.9)
    if res.rotation_offset_deg is not None and not measures_azimuth:
        warnings.append(f"a {profile.geometry.kind} array that is not horizontal measures azimuth only together with "
                        f"elevation: the offset of {res.rotation_offset_deg:+.0f}° from --source-azimuth is not checked")
    elif res.rotation_offset_deg is not None and abs(res.rotation_offset_deg) > MAX_ROTATION_DEG:
        problems.append(f"directions are {res.rotation_offset_deg:+.0f}° off the stated --source-azimuth: the array "
                        f"is turned against its profile (or the talker was not at {res.source_azimuth_deg:g}° at first)")
    problems = rates.problems + problems
    warnings += rates.warnings
    if ambiguous and res.status == "consistent" and source_azimuth is None:
        warnings.append(f"{len(ambiguous)} other channel map(s) fit as well (the array's symmetry): give "
                        "--source-azimuth with a recording that starts with the talker at a known direction")
    return Report(profile.name, list(profile.channel_map), fs, rec.where, rec.duration_s, reports, pair_reps, res,
                  size, rates, coh, obs.n_windows, floor, speed, suggested, ambiguous, problems, warnings,
                  time.perf_counter() - t0)
