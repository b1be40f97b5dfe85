"""Command line: ``arraydaemon COMMAND``. User mistakes print one line and exit 2, never a traceback."""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from pathlib import Path

from arraydaemon import __version__

from arraydaemon.io import wire
from arraydaemon.service.settings import INTEGRATION_S, MAX_INTEGRATION_S
from arraydaemon.core.errors import UserError

log = logging.getLogger("arraydaemon")
from arraydaemon.core.paths import DATA_DIR


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def integration_seconds(value: float) -> float:
    """``--integration``, checked here (a one-line error) rather than by argparse (usage + error)."""
    if not (math.isfinite(value) and 0 <= value <= MAX_INTEGRATION_S):
        raise UserError(f"--integration: expected seconds in [0, {MAX_INTEGRATION_S:g}] (0: none), got {value:g}")
    return value


def _add_pipeline_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("pipeline")
    g.add_argument("--estimator", choices=("neural", "srp-phat"), default=None,
                   help="localizer (default: neural when shipped weights are present, else srp-phat)")
    g.add_argument("--weights", default=None, metavar="FILE",
                   help="neural weights (safetensors from `arraydaemon train --out`) instead of the shipped model; "
                   "implies --estimator neural")
    g.add_argument("--hop", type=_positive_float, default=None, metavar="SECONDS",
                   help="time between windows (default 0.1; windows are 0.25 s)")
    g.add_argument("--fmin", type=_positive_float, default=None, metavar="HZ", help="band low edge (default 200)")
    g.add_argument("--fmax", type=_positive_float, default=None, metavar="HZ", help="band high edge (default 7000)")
    g.add_argument("--resolution", type=_positive_float, default=None, metavar="DEG",
                   help="direction grid resolution in degrees (default 1 for planar/linear arrays; "
                   "a 2000-point sphere, about 4.5 degrees, for 3-D arrays)")
    g.add_argument("--max-sources", type=int, default=None, metavar="N", help="sources per window (default 4)")
    g.add_argument("--integration", type=float, default=None, metavar="SECONDS",
                   help=f"time constant of the integration over past windows (default {INTEGRATION_S:g}; 0: every "
                   "window on its own, faster to follow a moving source, less accurate in reverberant rooms)")
    g.add_argument("--track-silence", type=_positive_float, default=None, metavar="SECONDS",
                   help="retire a tracked source not heard for this long (default 1.5)")


def pipeline_options(args, base=None):
    """PipelineOptions from command-line flags (flags given override ``base``)."""
    from dataclasses import replace

    from arraydaemon.pipeline import PipelineOptions

    opts = base or PipelineOptions()
    feats, loc = opts.features, opts.localizer
    if args.hop is not None:
        feats = replace(feats, hop_s=args.hop)
    if args.fmin is not None:
        feats = replace(feats, fmin_hz=args.fmin)
    if args.fmax is not None:
        feats = replace(feats, fmax_hz=args.fmax)
    if args.resolution is not None:
        loc = replace(loc, resolution_deg=args.resolution)
    if args.max_sources is not None:
        if not 1 <= args.max_sources <= 8:
            raise UserError(f"--max-sources: expected 1..8, got {args.max_sources}")
        loc = replace(loc, max_sources=args.max_sources)
    if getattr(args, "integration", None) is not None:
        loc = replace(loc, integration_s=integration_seconds(args.integration))
    try:
        feats.validate()
    except ValueError as exc:
        raise UserError(str(exc)) from None
    tracker = opts.tracker
    if getattr(args, "track_silence", None) is not None:
        tracker = replace(tracker, max_silence_s=args.track_silence)
    flag_weights = getattr(args, "weights", None)
    estimator = args.estimator or ("neural" if flag_weights else base.estimator if base is not None
                                   else default_estimator())
    if flag_weights and estimator != "neural":
        raise UserError(f"--weights is for the neural estimator, not --estimator {estimator}")
    weights = (flag_weights or opts.weights) if estimator == "neural" else None
    return replace(opts, estimator=estimator, weights=weights, features=feats, localizer=loc, tracker=tracker)


def default_estimator() -> str:
    """``neural`` when the shipped weights are present, else ``srp-phat``."""
    try:
        from arraydaemon.localizers.neural.stage import shipped_weights_available
    except ImportError:
        return "srp-phat"
    return "neural" if shipped_weights_available() else "srp-phat"


# ----------------------------------------------------------------------------------------------
# Display


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
    return f"{topic} {payload}"


def _jsonable(payload: dict) -> dict:
    import base64

    return {k: (base64.b64encode(v).decode() if isinstance(v, bytes) else v) for k, v in payload.items()}


# ----------------------------------------------------------------------------------------------
# Commands


def cmd_profile_list(args) -> int:
    from arraydaemon.core.profiles import BUNDLED_DIR, available_profiles, load_profile_file

    rows = []
    for name, path in sorted(available_profiles().items()):
        origin = "bundled" if path.parent == BUNDLED_DIR else str(path.parent)
        try:
            p = load_profile_file(path)
            rows.append((name, str(p.num_mics), str(p.sample_rate), p.geometry.kind, origin, p.description))
        except UserError as exc:
            rows.append((name, "?", "?", "invalid", origin, str(exc)))
    header = ("name", "mics", "rate", "kind", "from", "description")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(5)]
    for r in [header] + rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:5], widths)) + "  " + r[5])
    return 0


def cmd_profile_check(args) -> int:
    from arraydaemon.core.profiles import load_profile

    p = load_profile(args.profile)
    g = p.geometry
    print(f"profile      {p.name}  ({p.path})")
    if p.description:
        print(f"description  {p.description}")
    print(f"mics         {p.num_mics} ({g.kind}), reference mic {p.reference_mic}")
    print(f"device       {p.channels} channels at {p.sample_rate} Hz, mics on channels {list(p.channel_map)}"
          + (f", device name contains '{p.device}'" if p.device else ""))
    print(f"aperture     {g.aperture_m * 100:.1f} cm (closest pair {g.min_spacing_m * 100:.1f} cm)")
    print(f"max TDOA     {g.max_tdoa_s * 1e6:.0f} µs = {g.max_tdoa_s * p.sample_rate:.1f} samples "
          f"(c = {p.speed_of_sound:g} m/s)")
    print(f"aliasing     above {g.aliasing_hz:.0f} Hz (largest nearest-neighbour spacing "
          f"{g.nearest_neighbour_spacing_m * 100:.1f} cm)")
    print(f"ambiguity    {g.describe_ambiguity()}")
    print("ok")
    return 0


def cmd_profile_add(args) -> int:
    from arraydaemon.core.profiles import install_profile, user_profile_dir

    dest = install_profile(args.file, user_profile_dir(user=args.user))
    print(f"installed {dest}")
    return 0


def _open_publisher(args, quiet_fallback: bool = False):
    from arraydaemon.io.publisher import ZmqPublisher

    if getattr(args, "no_publish", False):
        return None
    endpoint = args.endpoint or wire.DEFAULT_ENDPOINT
    try:
        return ZmqPublisher(endpoint)
    except UserError:
        if not quiet_fallback:
            raise
        pub = ZmqPublisher("tcp://127.0.0.1:*")
        print(f"note: {endpoint} is busy; publishing on {pub.bound_endpoint}", file=sys.stderr)
        return pub


def _replay(path, profile, options, publisher, realtime: bool, on_payload):
    """Replays ``path``; returns (pipeline, source, wall seconds)."""
    from arraydaemon.pipeline import Pipeline, run_blocks
    from arraydaemon.io.files import FileSource

    pipeline = Pipeline(profile, options, publisher)
    source = FileSource(path, profile, block_size=pipeline.layout.hop_samples,
                        notify=lambda msg: print(f"note: {msg}", file=sys.stderr))
    t0 = time.monotonic()
    run_blocks(pipeline, source.blocks(), realtime, lambda r: on_payload(r.payloads[0][1]))
    return pipeline, source, time.monotonic() - t0


def cmd_replay(args) -> int:
    from arraydaemon.core.profiles import load_profile

    profile = load_profile(args.profile)
    options = pipeline_options(args)
    publisher = _open_publisher(args)
    out = None
    if args.jsonl == "-":
        out = sys.stdout
    elif args.jsonl:
        try:
            out = open(args.jsonl, "w", encoding="utf-8")
        except OSError as exc:
            raise UserError(f"{args.jsonl}: cannot write ({exc.strerror})") from None
    human = out is not sys.stdout and not args.quiet

    def on_payload(payload):
        if out is not None:
            out.write(json.dumps(payload, separators=(",", ":")) + "\n")
        if human:
            print(format_doa_line(payload), flush=True)

    try:
        pipeline, source, wall = _replay(args.file, profile, options, publisher, not args.fast, on_payload)
    finally:
        if out is not None and out is not sys.stdout:
            out.close()
        if publisher is not None:
            publisher.close()
    bad = f", {pipeline.features.bad_blocks} NaN/Inf block(s) skipped" if pipeline.features.bad_blocks else ""
    print(f"replayed {source.duration_s:.2f} s in {wall:.2f} s ({source.duration_s / max(wall, 1e-9):.1f}× real time), "
          f"{pipeline.windows} windows, estimator {options.estimator}{bad}", file=sys.stderr)
    return 0


def azimuth_error_deg(a: float, b: float) -> float:
    """Absolute azimuth difference in degrees, wrapped to [0, 180]."""
    return abs((a - b + 180.0) % 360.0 - 180.0)


def cmd_demo(args) -> int:
    import numpy as np

    from arraydaemon.core.profiles import load_profile

    truth = json.loads((DATA_DIR / "demo.json").read_text())
    profile = load_profile(truth["profile"])
    options = pipeline_options(args)
    publisher = _open_publisher(args, quiet_fallback=True)
    true_az = truth["sources"][0]["azimuth_deg"]
    errors, windows = [], 0
    where = publisher.bound_endpoint if publisher else "nowhere (--no-publish)"
    print(f"arraydaemon demo: a simulated talker at azimuth {true_az:+.0f}° in a room with RT60 "
          f"{truth['rt60']} s, {profile.num_mics}-mic array '{profile.name}', estimator {options.estimator}, "
          f"publishing on {where}")

    def on_payload(payload):
        nonlocal windows
        windows += 1
        print(format_doa_line(payload), flush=True)
        if payload["sources"]:
            errors.append(azimuth_error_deg(payload["sources"][0]["azimuth_deg"], true_az))

    try:
        _replay(DATA_DIR / "demo.flac", profile, options, publisher, not args.fast, on_payload)
    finally:
        if publisher is not None:
            publisher.close()
    if errors:
        e = np.array(errors)
        print(f"accuracy: true azimuth {true_az:+.1f}°, {len(e)}/{windows} windows active, azimuth error median "
              f"{np.median(e):.1f}°, mean {e.mean():.1f}°, within 10°: {np.mean(e <= 10) * 100:.0f}%")
    else:
        print(f"accuracy: true azimuth {true_az:+.1f}°, 0/{windows} windows active")
    return 0


def cmd_listen(args) -> int:
    import zmq

    endpoint = args.endpoint or wire.DEFAULT_ENDPOINT
    topics = [t.strip() for t in args.topics.split(",")] if args.topics else list(wire.TOPICS)
    unknown = [t for t in topics if t not in wire.TOPICS]
    if unknown:
        raise UserError(f"--topics: unknown topic(s) {', '.join(unknown)}; known: {', '.join(wire.TOPICS)}")
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(endpoint)
    except zmq.ZMQError as exc:
        raise UserError(f"cannot connect to {endpoint}: {exc.strerror}") from None
    for t in topics:
        sock.setsockopt(zmq.SUBSCRIBE, t.encode())
    count = 0
    deadline = time.monotonic() + args.timeout if args.timeout else None
    try:
        while args.count is None or count < args.count:
            wait_ms = 200 if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
            if deadline is not None and wait_ms == 0:
                break
            if not sock.poll(min(wait_ms, 200)):
                continue
            try:
                topic, payload = wire.decode(sock.recv_multipart())
            except wire.WireError as exc:
                print(f"skipping malformed message: {exc}", file=sys.stderr)
                continue
            line = json.dumps({"topic": topic, **_jsonable(payload)}) if args.json else format_message(topic, payload)
            print(line, flush=True)
            count += 1
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return 0


def cmd_train(args) -> int:
    from arraydaemon.localizers.neural.stage import WEIGHTS_PATH, ModelArgs
    from arraydaemon.research.train import HELD_OUT_CHUNKS, TrainConfig, generate, train

    if args.steps < 1:
        raise UserError(f"--steps: expected a positive number of steps, got {args.steps}")
    for flag, value in (("--d-model", args.d_model), ("--layers", args.layers), ("--heads", args.heads), ("--ff", args.ff)):
        if value is not None and value < 1:
            raise UserError(f"{flag}: expected a positive number, got {value}")
    width, heads = args.d_model or ModelArgs.d_model, args.heads or ModelArgs.heads
    if width % heads:
        raise UserError(f"--d-model: expected a multiple of --heads ({heads}), got {width}")
    data, run = Path(args.data), Path(args.run)
    generate(data, "train", 0, args.stage0_chunks, args.workers, scenes_per_chunk=args.scenes_per_chunk)
    generate(data, "train", 1, args.stage1_chunks, args.workers, scenes_per_chunk=args.scenes_per_chunk)
    generate(data, "val", 1, HELD_OUT_CHUNKS, args.workers, scenes_per_chunk=args.scenes_per_chunk)  # held-out loss
    model = {k: v for k, v in (("position", args.position), ("input", args.input), ("d_model", args.d_model),
                               ("layers", args.layers), ("heads", args.heads), ("ff", args.ff)) if v}
    cfg = TrainConfig(steps=args.steps, batch=args.batch, seed=args.seed, model=model, pretrain=not args.no_pretrain,
                      pretrain_steps=min(1000, args.steps // 10), stage0_steps=min(2000, args.steps // 5),
                      checkpoint_every=min(250, args.steps))
    train(data, run, cfg, resume=not args.fresh, out_weights=Path(args.out) if args.out else WEIGHTS_PATH)
    return 0


def cmd_eval(args) -> int:
    from arraydaemon.research.evaluate import ablation_table, run_eval
    from arraydaemon.localizers.neural.stage import WEIGHTS_PATH

    weights = Path(args.weights) if args.weights else WEIGHTS_PATH
    compare = {}
    for item in args.compare or []:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise UserError(f"--compare: expected NAME=WEIGHTS, got {item!r}")
        compare[name] = Path(path)
    for path in [weights, *compare.values()]:
        if not path.is_file():
            raise UserError(f"{path}: neural weights not found (train them with `arraydaemon train`)")
    if compare:
        print(ablation_table(compare, args.scenes, integration_seconds(args.integration)))
    else:
        print(run_eval(args.scenes, args.dry_scenes, weights, Path(args.out), integration_seconds(args.integration)))
    return 0


def cmd_run(args) -> int:
    from arraydaemon.service.daemon import cmd_run as run

    return run(args)


def cmd_devices(args) -> int:
    from arraydaemon.io.capture.parent import cmd_devices as devices

    return devices(args)


def cmd_config_check(args) -> int:
    from arraydaemon.service.settings import cmd_config_check as check

    return check(args)


def cmd_reason(args) -> int:
    from arraydaemon.reason.listener import cli_main  # no numpy/numba/torch: the reasoning subscriber stays light

    return cli_main(args)


def cmd_bench(args) -> int:
    from arraydaemon.research.bench import run_benchmarks

    run_benchmarks(mic_counts=args.mics, seconds=args.seconds, repeats=args.repeats)
    return 0


# ----------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="arraydaemon", description="Real-time sound-source localization "
                                     "for microphone arrays; publishes directions over ZeroMQ.")
    parser.add_argument("--version", action="version", version=f"arraydaemon {__version__}")
    parser.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"))
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("replay", help="run the live pipeline on a recording")
    p.add_argument("file", help="multichannel audio file (any libsndfile format)")
    p.add_argument("--profile", required=True, help="array profile name or YAML file")
    p.add_argument("--fast", action="store_true", help="as fast as possible instead of real time")
    p.add_argument("--jsonl", metavar="OUT", help="write one JSON object per window to OUT ('-' for stdout)")
    p.add_argument("--endpoint", help=f"ZeroMQ PUB endpoint (default {wire.DEFAULT_ENDPOINT})")
    p.add_argument("--no-publish", action="store_true", help="do not open a ZeroMQ socket")
    p.add_argument("--quiet", action="store_true", help="no per-window lines on the terminal")
    _add_pipeline_args(p)
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("demo", help="replay the bundled demo recording and report accuracy")
    p.add_argument("--fast", action="store_true", help="as fast as possible instead of real time")
    p.add_argument("--endpoint", help=f"ZeroMQ PUB endpoint (default {wire.DEFAULT_ENDPOINT})")
    p.add_argument("--no-publish", action="store_true", help="do not open a ZeroMQ socket")
    _add_pipeline_args(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("listen", help="subscribe and print one line per message")
    p.add_argument("endpoint", nargs="?", help=f"endpoint to connect to (default {wire.DEFAULT_ENDPOINT})")
    p.add_argument("--topics", help=f"comma-separated topics (default all: {','.join(wire.TOPICS)})")
    p.add_argument("--json", action="store_true", help="JSON lines (bytes as base64)")
    p.add_argument("--count", type=int, help="exit after N messages")
    p.add_argument("--timeout", type=_positive_float, help="exit after SECONDS")
    p.set_defaults(func=cmd_listen)

    p = sub.add_parser("profile", help="list, check or install array profiles")
    psub = p.add_subparsers(dest="profile_command", metavar="ACTION")
    psub.required = True
    q = psub.add_parser("list", help="bundled and installed profiles")
    q.set_defaults(func=cmd_profile_list)
    q = psub.add_parser("check", help="validate a profile and print its geometry")
    q.add_argument("profile", help="profile name or YAML file")
    q.set_defaults(func=cmd_profile_check)
    q = psub.add_parser("add", help="validate a YAML profile and install it")
    q.add_argument("file")
    q.add_argument("--user", action="store_true", help="install into $XDG_CONFIG_HOME even as root (not /etc)")
    q.set_defaults(func=cmd_profile_add)

    p = sub.add_parser("train", help="simulate rooms and train the neural localizer (CPU, resumable)")
    p.add_argument("--data", default="cache/data", help="simulated-data cache directory")
    p.add_argument("--run", default="training/neural", help="checkpoint directory (resumed unless --fresh)")
    p.add_argument("--out", help="weights file to write (default: the shipped arraydaemon/data/neural.safetensors)")
    p.add_argument("--steps", type=int, default=12000)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--stage0-chunks", type=int, default=20, help="chunks of clean single-source scenes")
    p.add_argument("--stage1-chunks", type=int, default=120, help="chunks of full-mix scenes")
    p.add_argument("--scenes-per-chunk", type=int, default=50)
    p.add_argument("--workers", type=int, default=1, help="simulation processes")
    p.add_argument("--position", choices=("relative", "absolute"), help="position encoding (ablation)")
    p.add_argument("--input", choices=("gcc", "gcc+energy", "phase"),
                   help="token input: pair GCC-PHAT, plus energy-weighted GCC, or raw STFT phase (ablation)")
    p.add_argument("--no-pretrain", action="store_true", help="skip clean-GCC distillation (ablation)")
    p.add_argument("--d-model", type=int, help="encoder width (default 128; capacity ablation)")
    p.add_argument("--layers", type=int, help="encoder blocks (default 4)")
    p.add_argument("--heads", type=int, help="attention heads (default 4)")
    p.add_argument("--ff", type=int, help="feed-forward width (default 256)")
    p.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="neural vs SRP-PHAT on a held-out test set with unseen arrays")
    p.add_argument("--weights", help="weights file (default: the shipped weights)")
    p.add_argument("--scenes", type=int, default=150, help="scenes with unseen random geometries")
    p.add_argument("--dry-scenes", type=int, default=4, help="dry-room scenes per bundled profile")
    p.add_argument("--out", default="eval_out", help="directory for the report, records and PNG plot")
    p.add_argument("--compare", action="append", metavar="NAME=WEIGHTS",
                   help="instead: one table row per weights file (the model's spectrum alone) on the unseen "
                        "scenes, plus SRP-PHAT (ablations; repeatable)")
    p.add_argument("--integration", type=float, default=INTEGRATION_S, metavar="SECONDS",
                   help=f"every estimator's integration over past windows (default {INTEGRATION_S:g}; 0: none)")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("bench", help="per-stage and per-kernel timings")
    p.add_argument("--mics", type=int, nargs="+", default=[4, 8, 16, 32])
    p.add_argument("--seconds", type=_positive_float, default=10.0, help="audio per configuration")
    p.add_argument("--repeats", type=int, default=200, help="kernel timing repeats")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("run", help="capture from a microphone array and publish directions (the daemon)")
    p.add_argument("--profile", help="array profile name or YAML file (default: the config file's)")
    p.add_argument("--device", help="PortAudio input device: name substring or index (default: the profile's)")
    p.add_argument("--endpoint", help=f"ZeroMQ PUB endpoint (default {wire.DEFAULT_ENDPOINT})")
    p.add_argument("--config", metavar="FILE",
                   help="configuration file (default /etc/arraydaemon/arraydaemon.yaml if it exists)")
    p.add_argument("--wait", action="store_true", help="wait for a missing device instead of exiting")
    p.add_argument("--latency", help="PortAudio input latency: low, high or seconds (default low)")
    _add_pipeline_args(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("devices", help="audio input devices and the profiles that match them")
    p.set_defaults(func=cmd_devices)

    p = sub.add_parser("config", help="check the daemon's configuration file")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION")
    csub.required = True
    q = csub.add_parser("check", help="validate a configuration file and print its settings")
    q.add_argument("file", nargs="?", help="file to check (default /etc/arraydaemon/arraydaemon.yaml)")
    q.set_defaults(func=cmd_config_check)

    p = sub.add_parser("reason", help="answer spatial questions about the published scene (built-in or an LLM)",
                       description="Subscribe to tracks, doa and embedding, keep a short scene memory and answer "
                       "questions about it: built-in answers, or an OpenAI-compatible chat-completions server.")
    p.add_argument("endpoint", nargs="?", help=f"endpoint to connect to (default {wire.DEFAULT_ENDPOINT})")
    p.add_argument("--endpoint", dest="endpoint_opt", metavar="ENDPOINT", help="same as the positional ENDPOINT")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--ask", action="append", metavar="QUESTION", help="answer QUESTION once and exit (repeatable)")
    mode.add_argument("--describe", action="store_true", help="print a one-line scene description every second")
    p.add_argument("--listen-seconds", type=_positive_float, default=3.0, metavar="S",
                   help="--ask: listen this long after the first message before answering (default 3)")
    p.add_argument("--wait-seconds", type=_positive_float, default=10.0, metavar="S",
                   help="--ask: give up if no message arrives within S seconds (default 10)")
    p.add_argument("--duration", type=_positive_float, metavar="S", help="--describe: stop after S seconds")
    p.add_argument("--memory-seconds", type=_positive_float, default=60.0, metavar="S",
                   help="how long retired sources are remembered (default 60)")
    p.add_argument("--llm-url", metavar="URL", help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8080/v1 "
                   "(default $ARRAYDAEMON_LLM_URL; none: built-in answers only)")
    p.add_argument("--llm-model", metavar="NAME", help="model name to request (default $ARRAYDAEMON_LLM_MODEL)")
    p.add_argument("--llm-timeout", type=_positive_float, default=30.0, metavar="S",
                   help="seconds to wait for the LLM before the built-in answer (default 30)")
    p.add_argument("--json", action="store_true", help="one JSON object per answer")
    p.set_defaults(func=cmd_reason)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"arraydaemon: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # stdout closed by a pipe reader (e.g. `| head`): not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
