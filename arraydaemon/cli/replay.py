"""``arraydaemon replay`` and ``arraydaemon demo``: recordings through the live pipeline."""

from __future__ import annotations

import json
import sys

from arraydaemon.cli.common import add_pipeline_args, add_publish_args, command, open_publisher
from arraydaemon.cli.display import format_doa_line
from arraydaemon.core.angles import azimuth_difference
from arraydaemon.core.errors import UserError
from arraydaemon.core.paths import DATA_DIR


def register(sub) -> None:
    p = command(sub, "replay", "run the live pipeline on a recording",
                "The recording goes through exactly the stages live capture uses, in real time or as fast as "
                "possible, and is published like live audio (t_end: seconds from the file's start). The file "
                "needs at least the profile's mic channels (channel_map picks them); another sample rate is "
                "resampled. '-' reads standard input (WAV, AU or CAF through a pipe).",
                ("arraydaemon replay rec.wav --profile respeaker_6mic_hat         # real time, publishes",
                 "arraydaemon replay rec.flac --profile my_array.yaml --fast --jsonl out.jsonl --no-publish",
                 "arecord -D hw:1 -f S16_LE -c 6 -r 16000 | arraydaemon replay - --profile respeaker_6mic_hat"))
    p.add_argument("file", help="multichannel audio file (any libsndfile format; '-' for standard input)")
    p.add_argument("--profile", required=True, help="array profile name or YAML file")
    p.add_argument("--fast", action="store_true", help="as fast as possible instead of real time")
    p.add_argument("--wall-start", type=float, metavar="UNIX_TIME",
                   help="the UNIX time of the file's first sample: a real-time replay waits for it and stamps "
                   "wall_time from it (replays of several arrays of one room, for `arraydaemon fuse`; default: now)")
    p.add_argument("--jsonl", metavar="OUT", help="write one JSON object per window (the doa fields) to OUT, '-' for "
                   "stdout (default: none)")
    add_publish_args(p)
    p.add_argument("--quiet", action="store_true", help="no per-window lines on the terminal")
    add_pipeline_args(p)
    p.set_defaults(func=cmd_replay)

    p = command(sub, "demo", "replay the bundled demo recording and report accuracy",
                "A 6-second simulated recording of one talker (4-mic array, reverberant room) through the full "
                "pipeline, published on ZeroMQ (a free port if the default is busy), one line per window, then "
                "the azimuth error against the truth.",
                ("arraydaemon demo", "arraydaemon demo --fast --estimator srp-phat --no-publish"))
    p.add_argument("--fast", action="store_true", help="as fast as possible instead of real time")
    add_publish_args(p)
    add_pipeline_args(p)
    p.set_defaults(func=cmd_demo)


def _replay(path, profile, options, publisher, realtime: bool, on_payload, wall_start=None):
    """Replays ``path``, passing each window's ``doa`` payload to ``on_payload``; a stop signal ends
    it with the windows done so far (``stopped_by``)."""
    from arraydaemon.service.replay import replay_file, stop_on_signals

    with stop_on_signals():
        return replay_file(path, profile, options, publisher, realtime, lambda r: on_payload(r.payloads[0][1]),
                           notify=lambda msg: print(f"note: {msg}", file=sys.stderr), wall_start=wall_start)


def _stopped_note(done) -> int | None:
    """The exit status of a replay a signal ended (128 + the signal, as a shell reports it), noted."""
    if done.stopped_by is None:
        return None
    import signal

    print(f"stopped by {signal.Signals(done.stopped_by).name} after {done.pipeline.windows} windows", file=sys.stderr)
    return 128 + done.stopped_by


def cmd_replay(args) -> int:
    from arraydaemon.core.profiles import load_profile
    from arraydaemon.service.settings import resolve_pipeline

    profile = load_profile(args.profile)
    options = resolve_pipeline(args)
    publisher = open_publisher(args)
    out = _Output(args.jsonl) if args.jsonl else None
    human = args.jsonl != "-" and not args.quiet

    def on_payload(payload):
        if out is not None:
            try:
                line = json.dumps(payload, separators=(",", ":"), allow_nan=False)
            except ValueError:  # a non-finite number: never written (the wire refuses it too)
                print(f"note: window {payload.get('seq')} not written: a non-finite value", file=sys.stderr)
                return
            out.write(line + "\n")
        if human:
            print(format_doa_line(payload), flush=True)

    try:
        done = _replay(args.file, profile, options, publisher, not args.fast, on_payload, args.wall_start)
    finally:
        if out is not None:
            out.close()
        if publisher is not None:
            publisher.close()
    pipeline, seconds = done.pipeline, done.source.duration_s
    if done.stopped_by is not None:
        seconds = done.source.frames_read / done.source.file_rate
    bad = f", {pipeline.features.bad_blocks} NaN/Inf block(s) skipped" if pipeline.features.bad_blocks else ""
    print(f"replayed {seconds:.2f} s in {done.wall_s:.2f} s ({seconds / max(done.wall_s, 1e-9):.1f}× real time), "
          f"{pipeline.windows} windows, estimator {options.estimator}{bad}", file=sys.stderr)
    return _stopped_note(done) or 0


class _Output:
    """``--jsonl OUT`` ('-': standard output): a write or close that fails (a full disk) is one
    UserError naming OUT; after one, nothing more is tried."""

    def __init__(self, name: str):
        from arraydaemon.core.validation import shown

        self.name = "standard output" if name == "-" else shown(name)
        self.failed = False
        if name == "-":
            self.file = sys.stdout
        else:
            try:
                self.file = open(name, "w", encoding="utf-8")
            except OSError as exc:
                raise UserError(f"{self.name}: cannot write ({exc.strerror})") from None

    def _fail(self, exc: OSError) -> UserError:
        self.failed = True
        return UserError(f"{self.name}: cannot write ({exc.strerror or exc})")

    def write(self, text: str) -> None:
        try:
            self.file.write(text)
        except OSError as exc:
            raise self._fail(exc) from None

    def close(self) -> None:
        try:
            if self.file is sys.stdout:
                self.file.flush()
            else:
                self.file.close()
        except OSError as exc:
            if self.failed:
                return
            raise self._fail(exc) from None


def cmd_demo(args) -> int:
    import numpy as np

    from arraydaemon.core.profiles import load_profile
    from arraydaemon.service.settings import resolve_pipeline

    truth = json.loads((DATA_DIR / "demo.json").read_text())
    profile = load_profile(truth["profile"])
    options = resolve_pipeline(args)
    publisher = open_publisher(args, quiet_fallback=True)
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
            errors.append(azimuth_difference(payload["sources"][0]["azimuth_deg"], true_az))

    try:
        done = _replay(DATA_DIR / "demo.flac", profile, options, publisher, not args.fast, on_payload)
    finally:
        if publisher is not None:
            publisher.close()
    if errors:
        e = np.array(errors)
        print(f"accuracy: true azimuth {true_az:+.1f}°, {len(e)}/{windows} windows active, azimuth error median "
              f"{np.median(e):.1f}°, mean {e.mean():.1f}°, within 10°: {np.mean(e <= 10) * 100:.0f}%")
    else:
        print(f"accuracy: true azimuth {true_az:+.1f}°, 0/{windows} windows active")
    return _stopped_note(done) or 0
