"""``arraydaemon noise learn``: a noise model of the robot's own noise, from a recording of it alone."""

from __future__ import annotations

import sys

from arraydaemon.cli.common import command

MAX_SECONDS = 600


def register(sub) -> None:
    p = command(sub, "noise", "the robot's own noise: learn a noise model from a recording of it alone",
                "A robot's fan or motor, measured once at installation, is whitened out of every bin and never "
                "reported as a source (docs/robot-noise.md).",
                ("arraydaemon noise learn --profile respeaker_6mic_hat --file robot.wav --out robot.noise",))
    nsub = p.add_subparsers(dest="noise_command", metavar="ACTION")
    nsub.required = True
    q = command(nsub, "learn", "learn a noise model from a recording of the robot's noise alone",
                "The model is each STFT bin's spatial covariance of the noise, in a file tied to the profile. "
                "Record the robot switched on, with nobody talking; a recording with speech or another sound in "
                "it is refused (or, with --drop-loud, learned from the rest). Use the model with "
                "`run`/`replay --noise-model`.",
                ("arraydaemon noise learn --profile P --file robot.wav --out /etc/arraydaemon/robot.noise",
                 "arraydaemon noise learn --profile P --file robot.wav --out robot.noise --drop-loud"))
    q.add_argument("--profile", required=True, help="array profile name or YAML file")
    q.add_argument("--file", required=True, metavar="REC", help="multichannel recording of the noise alone "
                   "(any libsndfile format, the profile's channels and sample rate; 10 s or more is best)")
    q.add_argument("--out", required=True, metavar="MODEL", help="where to write the noise model")
    q.add_argument("--drop-loud", action="store_true",
                   help="when the recording is not noise alone (someone talks), learn from the rest instead of refusing")
    q.set_defaults(func=cmd_noise_learn)


def cmd_noise_learn(args) -> int:
    import numpy as np

    from arraydaemon.core.errors import UserError
    from arraydaemon.core.options import FeatureConfig
    from arraydaemon.core.profiles import load_profile
    from arraydaemon.io.files import FileSource
    from arraydaemon.noise.learn import learn
    from arraydaemon.noise.model import save_noise_model
    from arraydaemon.stages.features import FrameLayout

    profile = load_profile(args.profile)
    layout = FrameLayout.from_config(FeatureConfig(), profile.sample_rate)
    source = FileSource(args.file, profile, block_size=16384)
    blocks, samples = [], 0
    for block in source.blocks():
        blocks.append(block.samples)
        samples += len(block.samples)
        if samples > MAX_SECONDS * profile.sample_rate:
            raise UserError(f"{args.file}: longer than {MAX_SECONDS // 60} minutes; a minute of the noise is plenty")
    audio = np.concatenate(blocks)
    if not np.isfinite(audio).all():
        raise UserError(f"{args.file}: NaN/Inf samples; record the noise again")
    cov, report = learn(audio, layout, drop_loud=args.drop_loud, source=args.file)
    if report.loud:
        print(f"note: {args.file}: {report.describe()}; left out", file=sys.stderr)
    save_noise_model(args.out, cov, profile, layout, {"learned_s": report.learned_s, "recording": str(args.file)})
    print(f"noise model of {profile.name} ({profile.num_mics} mics) from {report.learned_s:.1f} s of "
          f"{args.file}: {args.out}")
    return 0
