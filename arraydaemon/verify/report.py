"""The verification report: a one-line verdict, the details, and the JSON object.

``ok`` is true when nothing is wrong: no mic channel dead, clipped, offset, off in gain, inverted or
duplicated; the channel order verified and consistent; no pair's delays beyond what its declared
distance allows; the geometry's size and the sample rate right; and with ``--source-azimuth``,
directions within :data:`MAX_ROTATION_DEG` of it. Warnings (a resampled or band-limited
recording, maps only the array's symmetry can tell apart) do not make it false.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from arraydaemon.verify.channels import ChannelReport
from arraydaemon.verify.coherence import CoherenceFit
from arraydaemon.verify.delays import PairReport
from arraydaemon.verify.order import OrderResult
from arraydaemon.verify.rate import RateResult
from arraydaemon.verify.scale import ScaleResult

MAX_ROTATION_DEG = 15.0


def _r(x, nd: int = 6):
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else round(float(x), nd)


@dataclass
class Report:
    """Everything ``profile verify`` found. Maps are device channels per mic (profile convention)."""

    profile_name: str
    declared_map: list[int]
    sample_rate: int
    where: str
    duration_s: float
    channels: list[ChannelReport]
    pairs: list[PairReport]
    order: OrderResult
    scale: ScaleResult
    rate: RateResult
    coherence: CoherenceFit | None
    active_windows: int
    noise_floor_db: float
    speed_of_sound: float
    suggested_map: list[int] | None = None
    ambiguous_maps: list[list[int]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def verdict(self) -> str:
        """One line: ``ok: ...`` or ``NOT OK: <first problems>``."""
        if self.ok:
            extra = f"; {len(self.ambiguous_maps)} symmetric map(s) equally good" if self.ambiguous_maps else ""
            return (f"ok: the recording agrees with profile '{self.profile_name}' (channel order, geometry, "
                    f"{len(self.declared_map)} mics){extra}")
        head = "; ".join(self.problems[:3])
        more = f" (+{len(self.problems) - 3} more)" if len(self.problems) > 3 else ""
        return f"NOT OK: {head}{more}"

    # ------------------------------------------------------------------------------------------

    def to_json(self) -> dict:
        o, s, r = self.order, self.scale, self.rate
        return {
            "ok": self.ok,
            "verdict": self.verdict(),
            "profile": self.profile_name,
            "recording": {"source": self.where, "duration_s": _r(self.duration_s, 3), "sample_rate": self.sample_rate,
                          "active_windows": self.active_windows, "noise_floor_db": _r(self.noise_floor_db, 1)},
            "declared_channel_map": list(self.declared_map),
            "suggested_channel_map": self.suggested_map,
            "ambiguous_maps": self.ambiguous_maps,
            "channels": [{"channel": c.channel, "mic": c.mic, "level_db": _r(c.level_db, 2),
                          "inband_db": _r(c.inband_db, 2), "dc": _r(c.dc, 5), "peak": _r(c.peak, 5),
                          "problems": list(c.problems), "notes": list(c.notes)} for c in self.channels],
            "pairs": [{"mics": list(p.mics), "channels": list(p.channels), "declared_m": _r(p.declared_m),
                       "max_observed_delay_s": _r(p.max_observed_delay_s, 7), "allowed_delay_s": _r(p.allowed_delay_s, 7),
                       "coherence_distance_m": _r(p.coherence_distance_m, 4), "windows": p.samples,
                       "problems": list(p.problems)} for p in self.pairs],
            "channel_order": {"status": o.status, "mics_checked": o.mics, "best_map": self.suggested_map or
                              (self.declared_map if o.status == "consistent" else None),
                              "confidence": _r(o.confidence, 3), "declared_score": _r(o.declared_score, 4),
                              "best_score": _r(o.best_score, 4), "runner_up_score": _r(o.runner_up_score, 4),
                              "z_declared": _r(o.z_declared, 2), "exhaustive": o.exhaustive, "maps_scored": o.maps_scored,
                              "source_azimuth_deg": _r(o.source_azimuth_deg, 1),
                              "measured_azimuth_deg": _r(o.measured_azimuth_deg, 1),
                              "rotation_offset_deg": _r(o.rotation_offset_deg, 1), "reason": o.reason},
            "geometry": {"status": s.status, "size_factor": _r(s.factor, 3), "delay_factor": _r(s.delay_factor, 3),
                         "coherence_factor": _r(s.coherence_factor, 3), "windows": s.windows, "message": s.message,
                         "coherence_note": self.coherence.reason if self.coherence is not None else "not measured"},
            "sample_rate": {"profile_hz": r.profile_hz, "file_hz": r.file_hz, "content_hz": r.content_hz,
                            "delay_ratio": _r(r.delay_ratio, 3)},
            "problems": list(self.problems),
            "warnings": list(self.warnings),
            "elapsed_s": _r(self.elapsed_s, 2),
        }

    # ------------------------------------------------------------------------------------------

    def lines(self) -> list[str]:
        """The details, after the verdict line."""
        out = [(f"recording   {self.where}: {self.duration_s:.1f} s at {self.sample_rate} Hz, {self.active_windows} "
                f"active windows (noise floor {self.noise_floor_db:.0f} dBFS)")]
        for p in self.problems:
            out.append(f"problem     {p}")
        for w in self.warnings:
            out.append(f"warning     {w}")
        out.append("channels    channel  mic  level dBFS  problems")
        for c in self.channels:
            mic = "-" if c.mic is None else str(c.mic)
            notes = "; ".join(c.notes)
            out.append(f"            {c.channel:>7}  {mic:>3}  {c.level_db:>10.1f}  "
                       f"{', '.join(c.problems) or '-'}{'  (' + notes + ')' if notes else ''}")
        o = self.order
        out.append(f"order       {self._order_text()}")
        if o.best_score is not None:
            conf = f", confidence {o.confidence:.2f}" if o.confidence is not None else ""
            out.append(f"            SRP score {o.declared_score:.3f} declared, {o.best_score:.3f} best"
                       + (f", {o.runner_up_score:.3f} next distinguishable map" if o.runner_up_score is not None else "")
                       + conf + f"; {o.maps_scored} maps {'(all)' if o.exhaustive else '(beam search)'}")
        if self.ambiguous_maps:
            shown = ", ".join(str(m) for m in self.ambiguous_maps[:6])
            more = f" and {len(self.ambiguous_maps) - 6} more" if len(self.ambiguous_maps) > 6 else ""
            out.append(f"            indistinguishable: {shown}{more}"
                       + ("" if o.source_azimuth_deg is not None else " (give --source-azimuth to pick one)"))
        if o.rotation_offset_deg is not None:
            out.append(f"            talker measured at {o.measured_azimuth_deg:.0f}°, stated {o.source_azimuth_deg:.0f}°: "
                       f"rotation offset {o.rotation_offset_deg:+.1f}°")
        out.append(f"geometry    {self.scale.status}: {self.scale.message}")
        out.append("pairs       mics    channels  declared  allowed µs  observed µs  coherence")
        for p in self.pairs:
            obs = "-" if p.max_observed_delay_s is None else f"{p.max_observed_delay_s * 1e6:.0f}"
            coh = "-" if p.coherence_distance_m is None else f"{p.coherence_distance_m * 100:.1f} cm"
            flag = "  exceeds" if "exceeds" in p.problems else ""
            out.append(f"            {p.mics[0]}-{p.mics[1]:<5} {p.channels[0]}-{p.channels[1]:<6} "
                       f"{p.declared_m * 100:6.1f} cm  {p.allowed_delay_s * 1e6:10.0f}  {obs:>11}  {coh:>9}{flag}")
        if self.coherence is not None and self.coherence.reason:
            out.append(f"coherence   not used: {self.coherence.reason}")
        r = self.rate
        out.append(f"rate        profile {r.profile_hz} Hz" + (f", file {r.file_hz} Hz" if r.file_hz else "")
                   + (f", content sampled at {r.content_hz} Hz" if r.content_hz else "")
                   + (f", largest delay {r.delay_ratio:.2f}× the geometry's" if r.delay_ratio is not None else ""))
        out.append(f"took        {self.elapsed_s:.1f} s")
        return out

    def _order_text(self) -> str:
        o = self.order
        if o.status == "undetermined":
            return f"not checked: {o.reason}"
        if o.status == "wrong":
            return f"WRONG: the recording fits channel_map {self.suggested_map} (declared {self.declared_map})"
        return f"consistent: {o.reason}"


def channel_problem_text(c: ChannelReport) -> str:
    where = f"channel {c.channel}" + (f" (mic {c.mic})" if c.mic is not None else "")
    return f"{where}: {', '.join(c.problems)}" + (f" ({'; '.join(c.notes)})" if c.notes else "")


def median_or_none(values) -> float | None:
    v = [x for x in values if x is not None and math.isfinite(x)]
    return float(np.median(v)) if v else None
