"""One-line text renderings of wire messages, for ``listen``, ``replay`` and ``demo``."""

from __future__ import annotations

import base64


def compass(azimuth_deg: float | None, width: int = 37) -> str:
    """A one-line strip from -180° (left end) to +180°, with the source marked."""
    cells = ["·"] * width
    cells[width // 2] = "|"
    if azimuth_deg is not None:
        cells[int(round((azimuth_deg + 180.0) / 360.0 * (width - 1)))] = "●"
    return "".join(cells)


def format_doa_line(payload: dict) -> str:
    sources = payload.get("sources", [])
    head = f"t={payload['t_end']:7.2f}s  {payload['level_db']:6.1f} dB  "
    if not sources:
        return head + "(no source)".ljust(40) + "  " + compass(None)
    s = sources[0]
    more = f" +{len(sources) - 1}" if len(sources) > 1 else ""
    text = f"az {s['azimuth_deg']:+7.1f}°  el {s['elevation_deg']:+5.1f}°  conf {s['confidence']:.2f}{more}"
    return head + text.ljust(40) + "  " + compass(s["azimuth_deg"])


def format_message(topic: str, payload: dict) -> str:
    if topic == "doa":
        return f"doa    seq={payload['seq']:<6} " + format_doa_line(payload)
    if topic == "health":
        stages = " ".join(f"{k}={v['p50']:.2f}/{v['p99']:.2f}ms" for k, v in payload.get("stage_ms", {}).items())
        return (f"health seq={payload['seq']:<6} {payload['state']:<11} windows={payload['windows']} "
                f"overflows={payload['overflows']} dropped={payload['dropped_blocks']} "
                f"queue={payload['queue_depth']} cpu={payload['cpu_percent']:.0f}% {stages}")
    if topic == "embedding":
        return f"embedding seq={payload['seq']:<6} t={payload['t_end']:.2f}s {payload['model']} shape={payload['shape']}"
    if topic == "tracks":
        tracks = " ".join(f"#{t['id']}@{t['azimuth_deg']:+.0f}°" for t in payload.get("tracks", []))
        return f"tracks seq={payload['seq']:<6} t={payload['t_end']:.2f}s {tracks or '(none)'}"
    if topic == "array":
        return (f"array  seq={payload['seq']:<6} {payload['array']} {payload['kind']} {len(payload['mics'])} mics "
                f"{payload['sample_rate']} Hz ambiguity={payload['ambiguity']} estimator={payload['estimator']}")
    if topic == "positions":
        places = " ".join(f"#{p['id']}@({p['x']:.2f},{p['y']:.2f},{p['z']:.2f})m±{p['sigma_m']:.2f}"
                          for p in payload.get("positions", []))
        bearings = " ".join(f"{b['array']}#{b['id']}@{b['azimuth_deg']:+.0f}°" for b in payload.get("bearings", []))
        down = [a["name"] for a in payload.get("array_states", []) if a["state"] != "up"]
        return (f"positions seq={payload['seq']:<6} {places or '(none)'}" + (f"  bearings {bearings}" if bearings else "")
                + (f"  not up: {','.join(down)}" if down else ""))
    if topic == "room":
        size = "x".join(f"{v:g}" for v in payload.get("size", [])) or "size not given"
        arrays = " ".join(f"{a['name']}@({a['position'][0]:.2f},{a['position'][1]:.2f})yaw{a['yaw_deg']:+.0f}°"
                          for a in payload.get("arrays", []) if len(a.get("position", [])) >= 2)
        marks = " ".join(f"{m['name']}@({m['position'][0]:.2f},{m['position'][1]:.2f})"
                         for m in payload.get("landmarks", []) if len(m.get("position", [])) >= 2)
        return (f"room   seq={payload['seq']:<6} {payload['array']} {size} m  {arrays}"
                + (f"  landmarks {marks}" if marks else ""))
    return f"{topic} {payload}"


def jsonable(payload: dict) -> dict:
    """``payload`` with bytes values as base64 text."""
    return {k: (base64.b64encode(v).decode() if isinstance(v, bytes) else v) for k, v in payload.items()}
