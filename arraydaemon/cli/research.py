"""``arraydaemon train``, ``export-onnx``, ``eval`` and ``bench``: the research tools (train, export-onnx
and eval need the ``arraydaemon[train]`` extra)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from arraydaemon.cli.common import command, positive_float
from arraydaemon.core.errors import UserError
from arraydaemon.core.options import INTEGRATION_S, MAX_INTEGRATION_S, valid_integration
from arraydaemon.core.paths import REASONING_CACHE, SHIPPED_WEIGHTS, TRACKING_CACHE
from arraydaemon.localizers.base import ESTIMATOR_NAMES, default_estimator


def register(sub) -> None:
    p = command(sub, "train", "simulate rooms and train the neural localizer (CPU, resumable)",
                "Simulates rooms (pyroomacoustics, espeak-ng speech; a resumable cache of chunks of scenes) and "
                "trains the model, a checkpoint every 250 steps; run it again to resume. Needs the training "
                "extra: pip install 'arraydaemon[train]'. The recipe and its results are in the model card.",
                ("arraydaemon train                                        # the shipped recipe (about an hour)",
                 "arraydaemon train --out mine.safetensors --run runs/mine   # your own weights",
                 "arraydaemon train --init arraydaemon/data/neural.safetensors --stage0-chunks 0 --stage1-chunks 10 "
                 "--stage2-chunks 50 --steps 6000 --lr 3e-4 --out tuned.safetensors --run runs/tuned"))
    p.add_argument("--data", default="cache/data", metavar="DIR", help="simulated-data cache directory "
                   "(default %(default)s)")
    p.add_argument("--run", default="training/neural", metavar="DIR",
                   help="checkpoint directory, resumed unless --fresh (default %(default)s)")
    p.add_argument("--out", help="weights file to write (default: the shipped arraydaemon/data/neural.safetensors)")
    p.add_argument("--steps", type=int, default=12000, help="training steps (default %(default)s)")
    p.add_argument("--batch", type=int, default=32, help="windows per batch (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="training seed (default %(default)s)")
    p.add_argument("--stage0-chunks", type=int, default=20, metavar="N",
                   help="chunks of clean single-source scenes (default %(default)s)")
    p.add_argument("--stage1-chunks", type=int, default=120, metavar="N",
                   help="chunks of full-mix scenes (default %(default)s)")
    p.add_argument("--stage2-chunks", type=int, default=0, metavar="N",
                   help="chunks of several-talker scenes: 2-3 close, some walking, a machine noise in half "
                   "(default %(default)s)")
    p.add_argument("--stage2-share", type=float, default=0.7, metavar="SHARE",
                   help="share of several-talker windows once stage 2 data exists (default %(default)s)")
    p.add_argument("--init", metavar="WEIGHTS", help="weights to start from (a fine-tune, e.g. the shipped model); the "
                   "run's steps then all train on the full losses and mix, without pretraining or a stage-0 phase "
                   "(default: none, from scratch)")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default %(default)g)")
    p.add_argument("--scenes-per-chunk", type=int, default=50, metavar="N",
                   help="scenes per cached chunk (default %(default)s)")
    p.add_argument("--workers", type=int, default=1, metavar="N", help="simulation processes (default %(default)s)")
    p.add_argument("--position", choices=("relative", "absolute"),
                   help="position encoding (ablation; default relative)")
    p.add_argument("--input", choices=("gcc", "gcc+energy", "phase"),
                   help="token input: pair GCC-PHAT, plus energy-weighted GCC, or raw STFT phase "
                   "(ablation; default gcc+energy)")
    p.add_argument("--no-pretrain", action="store_true", help="skip clean-GCC distillation (ablation)")
    p.add_argument("--d-model", type=int, metavar="N", help="encoder width (default 128; capacity ablation)")
    p.add_argument("--layers", type=int, metavar="N", help="encoder blocks (default 4)")
    p.add_argument("--heads", type=int, metavar="N", help="attention heads (default 4)")
    p.add_argument("--ff", type=int, metavar="N", help="feed-forward width (default 256)")
    p.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    p.set_defaults(func=cmd_train)

    p = command(sub, "export-onnx", "export a weights file's model to the ONNX graph the daemon runs",
                "The daemon runs the model's forward from this graph in ONNX Runtime, without torch; `train` "
                "writes it beside the weights it writes. Needs the training extra (torch, onnx).",
                ("arraydaemon export-onnx --weights mine.safetensors      # writes mine.onnx beside it",))
    p.add_argument("--weights", required=True, metavar="FILE", help="weights file (.safetensors)")
    p.add_argument("--out", metavar="FILE", help="graph file to write (default: beside the weights, with .onnx; "
                   "the daemon looks there)")
    p.set_defaults(func=cmd_export_onnx)

    p = command(sub, "eval", "neural vs SRP-PHAT on a held-out test set with unseen arrays",
                "Renders held-out scenes (other rooms, talkers and random array geometries than training's, "
                "one talker) and dry rooms for every bundled profile, runs every estimator on them and prints "
                "the tables of the model card. --tracking instead scores the tracks topic on multi-talker "
                "scenes (the tracking benchmark); --reasoning asks spatial questions through replay, ZeroMQ and "
                "`arraydaemon reason` (the spatial-QA benchmark). Needs the training extra.",
                ("arraydaemon eval                                   # the single-talker tables",
                 "arraydaemon eval --tracking                        # several talkers, the test set",
                 "arraydaemon eval --tracking --set dev --estimator srp-phat --scenes 30",
                 "arraydaemon eval --fusion --set dev --scenes 4          # several arrays, one map",
                 "arraydaemon eval --reasoning --llm-url http://127.0.0.1:8080/v1 --llm-model smollm2"))
    p.add_argument("--weights", help="weights file (default: the shipped weights)")
    p.add_argument("--scenes", type=int, metavar="N",
                   help="scenes with unseen random geometries (default 150; --tracking: 20, robot sets 12; "
                   "--fusion: 4; --reasoning: 12)")
    p.add_argument("--dry-scenes", type=int, default=4, metavar="N",
                   help="dry-room scenes per bundled profile (default %(default)s)")
    p.add_argument("--out", default="eval_out", metavar="DIR",
                   help="directory for the report, records and PNG plot (default %(default)s)")
    p.add_argument("--compare", action="append", metavar="NAME=WEIGHTS",
                   help="instead: one table row per weights file (the model's spectrum alone) on the unseen "
                        "scenes, plus SRP-PHAT (ablations; repeatable; default: none)")
    p.add_argument("--integration", type=float, default=INTEGRATION_S, metavar="SECONDS",
                   help=f"every estimator's integration over past windows (default {INTEGRATION_S:g}; 0: none)")
    p.add_argument("--odaslive", metavar="PATH",
                   help="--tracking: also score ODAS (stock settings; its odaslive built from introlab/odas's source) "
                   "on the same scenes, a row and per-condition tables beside arraydaemon's (default: none)")
    p.add_argument("--odas-only", action="store_true",
                   help="--tracking with --odaslive: score ODAS alone (its rows and tables, no arraydaemon estimator)")
    p.add_argument("--tracking", action="store_true",
                   help="instead: the multi-talker tracking benchmark (1-4 talkers, walking, crossing, pausing) "
                        "through the pipeline's tracks topic, one row per estimator")
    p.add_argument("--reasoning", action="store_true",
                   help="instead: the spatial-QA benchmark: questions from the truth of unseen scenes asked through "
                        "replay, ZeroMQ and `arraydaemon reason`, scored per kind")
    p.add_argument("--llm-url", metavar="URL",
                   help="--reasoning: also ask an OpenAI-compatible server (default: the built-in answerer only)")
    p.add_argument("--llm-model", metavar="NAME", help="--reasoning: the model name to request (default: none)")
    p.add_argument("--llm-without-reading", action="store_true",
                   help="--reasoning: ask the model with the scene only, without the built-in answer in its prompt "
                        "(instead of with it, and routed)")
    p.add_argument("--fusion", action="store_true",
                   help="instead: the several-arrays benchmark: rooms with 2-4 arrays, each replayed by its own "
                        "`arraydaemon replay` process into a real `arraydaemon fuse` process over ZeroMQ TCP; "
                        "position error, coverage, ghosts, id switches, latency, with and without the first array")
    p.add_argument("--first-scene", type=int, default=0, metavar="N",
                   help="--fusion, --reasoning: index of the first scene (default %(default)s; --reasoning: of the "
                        "places scenes too)")
    p.add_argument("--places-scenes", type=int, default=4, metavar="N",
                   help="--reasoning: rooms of three arrays whose questions about places (near the door, how far "
                        "apart in metres) go through replays, `arraydaemon fuse` and `reason` (default %(default)s)")
    p.add_argument("--set", choices=("test", "dev", "robot-dev", "robot-test", "dry-dev", "dry-test"), default="test",
                   help="--tracking, --fusion: scene set (dev: for tuning; test: reported; robot-dev / robot-test "
                   "(--tracking only): the array on a robot with its own fan or motor, online only and with the "
                   "installation recording; dry-dev / dry-test (--tracking only): dry rooms, a talker 2-10 dB "
                   "quieter than another, near and far; default %(default)s)")
    p.add_argument("--estimator", action="append", choices=ESTIMATOR_NAMES,
                   help="--tracking: estimators to compare (repeatable; default: all, the default one first); "
                        "--fusion: the daemons' estimator (default srp-phat)")
    p.add_argument("--cache", default=str(TRACKING_CACHE), metavar="DIR",
                   help="--tracking: where rendered scenes are kept (default ~/.cache/arraydaemon/tracking-scenes; "
                        "--fusion: ~/.cache/arraydaemon/fusion-scenes; --reasoning: reasoning-scenes there)")
    p.set_defaults(func=cmd_eval)

    p = command(sub, "bench", "per-stage and per-kernel timings",
                "Times every pipeline stage per window on simulated audio (uniform circular arrays, an 8-mic "
                "3-D array; SRP-PHAT, its lean variant, the neural estimator) and every numba kernel against "
                "its numpy reference; prints markdown tables. Pin the threads for numbers worth keeping.",
                ("NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 arraydaemon bench",
                 "arraydaemon bench --mics 4 8 --seconds 5"))
    p.add_argument("--mics", type=int, nargs="+", default=[4, 8, 16, 32], metavar="N",
                   help="mic counts of the circular arrays (default 4 8 16 32)")
    p.add_argument("--seconds", type=positive_float, default=10.0,
                   help="audio per configuration (default %(default)g)")
    p.add_argument("--repeats", type=int, default=200, help="kernel timing repeats (default %(default)s)")
    p.set_defaults(func=cmd_bench)


def cmd_train(args) -> int:
    from arraydaemon.research import require_training_extra

    require_training_extra("train")
    if args.steps < 1:
        raise UserError(f"--steps: expected a positive number of steps, got {args.steps}")
    for flag, value in (("--d-model", args.d_model), ("--layers", args.layers), ("--heads", args.heads), ("--ff", args.ff)):
        if value is not None and value < 1:
            raise UserError(f"{flag}: expected a positive number, got {value}")
    from arraydaemon.localizers.neural.model import ModelArgs  # torch: after the cheap checks
    from arraydaemon.research.train import HELD_OUT_CHUNKS, TrainConfig, generate, initial_model, train

    width, heads = args.d_model or ModelArgs.d_model, args.heads or ModelArgs.heads
    if width % heads:
        raise UserError(f"--d-model: expected a multiple of --heads ({heads}), got {width}")
    fine_tune = args.init is not None
    if fine_tune and not Path(args.init).is_file():
        raise UserError(f"--init: {args.init}: no such weights file")
    if not 0.0 <= args.stage2_share <= 1.0:
        raise UserError(f"--stage2-share: expected a share between 0 and 1, got {args.stage2_share}")
    if not args.lr > 0:
        raise UserError(f"--lr: expected a positive learning rate, got {args.lr}")
    model = {k: v for k, v in (("position", args.position), ("input", args.input), ("d_model", args.d_model),
                               ("layers", args.layers), ("heads", args.heads), ("ff", args.ff)) if v}
    if fine_tune:  # before minutes of simulation: the weights load and fit the options
        initial_model(Path(args.init), model)
    data, run = Path(args.data), Path(args.run)
    generate(data, "train", 0, args.stage0_chunks, args.workers, scenes_per_chunk=args.scenes_per_chunk)
    generate(data, "train", 1, args.stage1_chunks, args.workers, scenes_per_chunk=args.scenes_per_chunk)
    generate(data, "train", 2, args.stage2_chunks, args.workers, scenes_per_chunk=args.scenes_per_chunk)
    generate(data, "val", 2 if args.stage2_chunks else 1, HELD_OUT_CHUNKS, args.workers,
             scenes_per_chunk=args.scenes_per_chunk)  # held-out loss
    cfg = TrainConfig(steps=args.steps, batch=args.batch, seed=args.seed, model=model, pretrain=not args.no_pretrain,
                      pretrain_steps=0 if fine_tune else min(1000, args.steps // 10),
                      stage0_steps=0 if fine_tune else min(2000, args.steps // 5),
                      checkpoint_every=min(250, args.steps), lr=args.lr, init=args.init or "",
                      stage2_share=args.stage2_share if args.stage2_chunks else 0.0)
    train(data, run, cfg, resume=not args.fresh, out_weights=Path(args.out) if args.out else SHIPPED_WEIGHTS)
    return 0


def cmd_export_onnx(args) -> int:
    weights = Path(args.weights)
    if not weights.is_file():
        raise UserError(f"{weights}: neural weights not found")
    try:
        from arraydaemon.localizers.neural.export import export_weights
    except ImportError as exc:
        raise UserError(f"`arraydaemon export-onnx` needs torch and onnx: pip install 'arraydaemon[train]' "
                        f"({exc})") from None
    out = export_weights(weights, Path(args.out) if args.out else None)
    print(f"wrote {out}")
    return 0


def cmd_eval(args) -> int:
    from arraydaemon.research import require_training_extra

    require_training_extra("eval")
    from arraydaemon.research.evaluate import ablation_table, run_eval

    if args.tracking and args.reasoning:
        raise UserError("--tracking and --reasoning: choose one benchmark")
    if args.odaslive and not args.tracking:
        raise UserError("--odaslive: only with --tracking (the tracking benchmark scores ODAS beside arraydaemon)")
    if args.tracking:
        return _tracking_eval(args)
    if args.reasoning:
        return _reasoning_eval(args)
    if args.fusion:
        return _fusion_eval(args)
    args.scenes = 150 if args.scenes is None else args.scenes
    weights = Path(args.weights) if args.weights else SHIPPED_WEIGHTS
    compare = {}
    for item in args.compare or []:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise UserError(f"--compare: expected NAME=WEIGHTS, got {item!r}")
        compare[name] = Path(path)
    for path in [weights, *compare.values()]:
        if not path.is_file():
            raise UserError(f"{path}: neural weights not found (train them with `arraydaemon train`)")
    if not valid_integration(args.integration):
        raise UserError(f"--integration: expected seconds in [0, {MAX_INTEGRATION_S:g}] (0: none), "
                        f"got {args.integration:g}")
    if compare:
        print(ablation_table(compare, args.scenes, args.integration))
    else:
        print(run_eval(args.scenes, args.dry_scenes, weights, Path(args.out), args.integration))
    return 0


def _tracking_eval(args) -> int:
    from arraydaemon.core.options import PipelineOptions
    from arraydaemon.research.tracking.report import run_tracking_eval

    scenes = (12 if args.set.startswith("robot-") else 24 if args.set.startswith("dry-") else 20) \
        if args.scenes is None else args.scenes
    if scenes < 1:
        raise UserError(f"--scenes: expected at least 1, got {scenes}")
    default = default_estimator()
    estimators = args.estimator or [default] + [n for n in ESTIMATOR_NAMES if n != default]
    if args.odas_only:
        if not args.odaslive or args.estimator:
            raise UserError("--odas-only: needs --odaslive, and no --estimator")
        estimators = []
    base = PipelineOptions(weights=args.weights)
    odaslive = None
    if args.odaslive:
        odaslive = shutil.which(args.odaslive) or (args.odaslive if os.access(args.odaslive, os.X_OK) else None)
        if odaslive is None or not Path(odaslive).is_file():
            raise UserError(f"--odaslive {args.odaslive}: not an executable file (build ODAS: see docs/benchmarks/tracking.md)")
    print(run_tracking_eval(args.set, scenes, estimators, Path(args.cache), Path(args.out), base, odaslive=odaslive))
    return 0


def _reasoning_eval(args) -> int:
    import sys

    from arraydaemon.reason.llm import check_llm_url
    from arraydaemon.research.reasoning.bench import run_reasoning_eval

    scenes = 12 if args.scenes is None else args.scenes
    if scenes < 1:
        raise UserError(f"--scenes: expected at least 1, got {scenes}")
    if bool(args.llm_url) != bool(args.llm_model):
        raise UserError("--llm-url and --llm-model go together (the server's base URL and the model it serves)")
    llm = (check_llm_url(args.llm_url), args.llm_model) if args.llm_url else None
    estimator = (args.estimator or [default_estimator()])[0]
    paths = ("llm, scene only",) if args.llm_without_reading else ("llm", "routed")
    cache = REASONING_CACHE if args.cache == str(TRACKING_CACHE) else Path(args.cache)
    if args.places_scenes < 0 or args.first_scene < 0:
        raise UserError("--places-scenes and --first-scene: expected 0 or more")
    print(run_reasoning_eval(scenes, cache, Path(args.out), estimator, llm,
                             progress=lambda line: print(line, file=sys.stderr, flush=True), llm_paths=paths,
                             first=args.first_scene, places_count=args.places_scenes,
                             places_first=args.first_scene, places_cache=cache.parent / "places-scenes"))
    return 0


def _fusion_eval(args) -> int:
    from arraydaemon.research.fusion.bench import run_fusion_eval

    if args.set not in ("dev", "test"):
        raise UserError(f"--set: --fusion has the sets dev and test, got {args.set}")
    scenes = 4 if args.scenes is None else args.scenes
    if scenes < 1 or args.first_scene < 0:
        raise UserError(f"--scenes: expected at least 1 (and --first-scene >= 0), got {scenes}")
    estimator = (args.estimator or ["srp-phat"])[0]
    cache = Path(args.cache).parent / "fusion-scenes" if args.cache == str(TRACKING_CACHE) else Path(args.cache)
    print(run_fusion_eval(args.set, scenes, cache, Path(args.out), estimator, args.first_scene))
    return 0


def cmd_bench(args) -> int:
    from arraydaemon.research.bench import run_benchmarks

    run_benchmarks(mic_counts=args.mics, seconds=args.seconds, repeats=args.repeats)
    return 0
