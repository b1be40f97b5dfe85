"""``arraydaemon train``: simulate data, pretrain on clean-GCC distillation, train the localizer.

Curriculum: stage 0 data (clean single-source rooms) first, then the full mix (reverberation,
noise, interferers, 0–3 sources). The first ``pretrain_steps`` optimise only the clean-GCC target
(spatial-feature distillation); after that the spatial-spectrum soft-label BCE, the activity and the
embedding losses join. A fine-tune (``--init``) starts from existing weights on the full losses,
mostly on stage 2 data (several simultaneous talkers, some walking; ``dataset.SceneRecipe``).
Seeded; checkpoints (model, optimiser, step, RNG) every ``checkpoint_every`` steps, loaded back with ``weights_only=True``; ``--resume`` continues from the last checkpoint.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from arraydaemon.core.errors import UserError
from arraydaemon.localizers.neural.tokens import phase_tokens
from arraydaemon.research import dataset

SPEED_OF_SOUND = 343.0
HELD_OUT_CHUNKS = 2  # val-split chunks of full-mix scenes for the held-out loss curve
STAGES = (0, 1, 2)  # clean single source, full mix, several talkers (dataset.SceneRecipe)


def generate(root: Path, split: str, stage: int, n_chunks: int, workers: int = 1, start: int = 0,
             scenes_per_chunk: int = dataset.CHUNK) -> list[Path]:
    """Ensure chunks ``start .. start+n_chunks`` exist (deterministic, resumable); returns their paths."""
    todo = [c for c in range(start, start + n_chunks) if not dataset.chunk_path(root, split, stage, c).exists()]
    if todo:
        desc = f"simulating {split} stage {stage} ({scenes_per_chunk} scenes/chunk)"
        with tqdm(total=len(todo), desc=desc, unit="chunk") as bar:
            if workers <= 1:
                for c in todo:
                    dataset.generate_chunk(root, split, stage, c, scenes_per_chunk)
                    bar.update()
            else:
                n = len(todo)
                with ProcessPoolExecutor(workers) as pool:
                    for _ in pool.map(dataset.generate_chunk, [root] * n, [split] * n, [stage] * n, todo,
                                      [scenes_per_chunk] * n):
                        bar.update()
    return [dataset.chunk_path(root, split, stage, c) for c in range(start, start + n_chunks)]



# ----------------------------------------------------------------------------------------------
# Training


@dataclass
class TrainConfig:
    steps: int = 12000
    batch: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    pretrain_steps: int = 1500  # clean-GCC distillation only
    stage0_steps: int = 3000  # curriculum: clean single-source rooms only until here
    sigma_deg: float = 8.0  # width of the soft direction labels
    random_dirs: int = 192
    near_dirs: int = 6  # jittered directions around each true source, per source
    checkpoint_every: int = 250
    rescan_every: int = 500  # pick up chunks generated while training
    seed: int = 0
    threads: int = 1
    model: dict = field(default_factory=dict)  # ModelArgs overrides (ablations: position, input)
    pretrain: bool = True
    stage2_share: float = 0.0  # share of several-talker (stage 2) windows after the stage-0 phase
    init: str = ""  # weights (safetensors) to start from instead of a random model: a fine-tune


def soft_targets(dirs, src, src_mask, kind, orient, sigma_rad):
    """Soft labels ``[shape=(B, D)]``: max over active sources of exp(-angle²/2σ²), where the angle
    respects the geometry's ambiguity (planar: mirror image across the plane also counts; linear:
    only the angle to the array axis is observable). ``dirs [shape=(B, D, 3)]``,
    ``src [shape=(B, S, 3)]``, ``src_mask [shape=(B, S)]``, ``kind [shape=(B,)]``, ``orient [shape=(B, 3)]``."""
    import torch

    cos = torch.einsum("bdk,bsk->bds", dirs, src).clamp(-1, 1)
    ang = torch.acos(cos)
    mirror = src - 2 * (src * orient[:, None]).sum(-1, keepdim=True) * orient[:, None]
    ang_mirror = torch.acos(torch.einsum("bdk,bsk->bds", dirs, mirror).clamp(-1, 1))
    cone_d = torch.acos((dirs * orient[:, None]).sum(-1).clamp(-1, 1))  # (B, D)
    cone_s = torch.acos((src * orient[:, None]).sum(-1).clamp(-1, 1))  # (B, S)
    ang_cone = (cone_d[:, :, None] - cone_s[:, None, :]).abs()
    k = kind[:, None, None]
    ang = torch.where(k == 1, torch.minimum(ang, ang_mirror), torch.where(k == 2, ang_cone, ang))
    t = torch.exp(-0.5 * (ang / sigma_rad) ** 2) * src_mask[:, None, :]
    return t.amax(-1) if t.shape[-1] else torch.zeros(dirs.shape[:2])


def random_rotations(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` rotation matrices ``[shape=(n, 3, 3)]``: half uniform in 3-D, half yaw only."""
    q = rng.standard_normal((n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    rot = np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], 1)
    yaw = rng.uniform(0, 2 * np.pi, n)
    yaw_rot = np.zeros((n, 3, 3))
    yaw_rot[:, 0, 0] = yaw_rot[:, 1, 1] = np.cos(yaw)
    yaw_rot[:, 0, 1], yaw_rot[:, 1, 0] = -np.sin(yaw), np.sin(yaw)
    yaw_rot[:, 2, 2] = 1
    use_yaw = rng.random(n) < 0.5
    rot[use_yaw] = yaw_rot[use_yaw]
    return rot


class Batches:
    """Random training batches from the cached chunks, with rotation augmentation."""

    def __init__(self, root: Path, rng: np.random.Generator, split: str = "train"):
        self.root = Path(root)
        self.rng = rng
        self.split = split
        self.data: dict[int, dict] = {}
        self.files: dict[int, list] = {}
        self.rescan()

    def rescan(self) -> None:
        """Load chunks that appeared since the last scan (a generator may still be writing them)."""
        for stage in STAGES:
            files = sorted(dataset.chunk_path(self.root, self.split, stage, 0).parent.glob("chunk_*[0-9].npz"))
            known = set(self.files.get(stage, []))
            new = [f for f in files if f not in known]
            if not new:
                continue
            loaded = dataset.load_chunks(new)
            if stage in self.data:  # only new chunks are read; the ones already loaded stay
                loaded = {k: np.concatenate([self.data[stage][k], v]) for k, v in loaded.items()}
            self.files[stage] = self.files.get(stage, []) + new
            self.data[stage] = loaded

    def windows(self, stage: int) -> int:
        return len(self.data[stage]["kind"]) if stage in self.data else 0

    def sample(self, batch: int, stage_probs: tuple[float, ...], cfg: TrainConfig, token_input: str) -> dict:
        """A batch of ``token_input`` tokens (the model's ``ModelArgs.input``) and their targets;
        ``stage_probs[s]``: the share of stage ``s`` windows (renormalised over the stages with data)."""
        import torch

        stages = [s for s in STAGES if self.windows(s) and stage_probs[s] > 0]
        if not stages:
            raise UserError(f"{self.root}: no {self.split} windows of the stages drawn from (shares {stage_probs})")
        probs = np.array([stage_probs[s] for s in stages])
        picks = self.rng.choice(stages, size=batch, p=probs / probs.sum())
        rows = {s: self.rng.integers(0, self.windows(s), size=int((picks == s).sum())) for s in stages}
        b = {k: np.concatenate([self.data[s][k][rows[s]] for s in stages]) for k in
             ("tokens", "clean", "pair_mask", "pair_pos", "dirs", "dir_mask", "kind", "orient")}
        if token_input == "gcc+energy":
            energy = np.concatenate([self.data[s]["energy"][rows[s]] for s in stages])
            b["tokens"] = np.concatenate([b["tokens"], energy], axis=-1)
        if token_input == "phase":  # ablation: both mics' raw STFT phase instead of the pair's GCC-PHAT
            phases = np.concatenate([self.data[s]["phases"][rows[s]] for s in stages])
            slots = np.concatenate([self.data[s]["pair_slots"][rows[s]] for s in stages]).astype(np.intp)
            b["tokens"] = np.stack([phase_tokens(ph, sl) for ph, sl in zip(phases, slots)])
        rot = random_rotations(self.rng, batch)
        b["pair_pos"] = np.einsum("bij,bpqj->bpqi", rot, b["pair_pos"])
        for k in ("dirs", "orient"):
            b[k] = np.einsum("bij,b...j->b...i", rot, b[k])
        # Directions scored: random ones plus jittered ones near each true source.
        rand = self.rng.standard_normal((batch, cfg.random_dirs, 3))
        near = b["dirs"][:, :, None, :] + self.rng.normal(0, 0.12, (batch, dataset.MAX_SOURCES, cfg.near_dirs, 3))
        grid = np.concatenate([rand, b["dirs"], near.reshape(batch, -1, 3)], 1)
        grid /= np.linalg.norm(grid, axis=-1, keepdims=True) + 1e-12
        b["grid"] = grid
        baselines = b["pair_pos"][:, :, 1] - b["pair_pos"][:, :, 0]
        b["tdoa"] = -np.einsum("bdk,bpk->bdp", grid, baselines) / SPEED_OF_SOUND
        out = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in b.items()}
        for k in ("tokens", "clean", "pair_pos", "dirs", "orient", "grid", "tdoa"):
            out[k] = out[k].float()
        out["kind"] = out["kind"].long()
        return out


def losses(model, batch: dict, cfg: TrainConfig, canonical, full: bool) -> dict:
    import torch.nn.functional as F

    out = model(batch["tokens"], batch["pair_pos"], batch["pair_mask"])
    m = batch["pair_mask"][..., None].float()
    clean = ((out["clean"] - batch["clean"]) ** 2 * m).sum() / (m.sum() * out["clean"].shape[-1])
    result = {"clean": clean}
    if not full:
        result["total"] = clean
        return result
    sigma = math.radians(cfg.sigma_deg)
    mask = batch["dir_mask"].float()
    target = soft_targets(batch["grid"], batch["dirs"], mask, batch["kind"], batch["orient"], sigma)
    logits = model.spectrum_logits(out, batch["tdoa"], batch["pair_mask"])
    spectrum = F.binary_cross_entropy_with_logits(logits, target)
    active = (mask.sum(-1) > 0).float()
    activity = F.binary_cross_entropy_with_logits(out["activity"], active)
    canon = canonical[None].expand(len(mask), -1, -1)
    canon_target = soft_targets(canon, batch["dirs"], mask, batch["kind"], batch["orient"], math.radians(20.0))
    embed = F.binary_cross_entropy_with_logits(model.embed_decoder(out["embedding"]), canon_target)
    total = 4.0 * spectrum + clean * (1.0 if cfg.pretrain else 0.0) + 0.2 * activity + 0.2 * embed
    result.update(spectrum=spectrum, activity=activity, embed=embed, total=total)
    return result


class HeldOut:
    """Held-out loss: full-mix scenes of the ``val`` split (other seeds, rooms and geometries than
    training, and than the ``eval`` test set), the same batches every time (fixed seed), so the curve
    in ``losses.csv`` shows over-fitting."""

    def __init__(self, root: Path, batches: int = 24, stage: int = 1):
        self.n = batches
        self.stage = stage
        self.batches = Batches(root, np.random.default_rng(0), split="val")
        self.available = bool(self.batches.windows(stage))

    def losses(self, model, cfg: "TrainConfig", canonical) -> dict[str, float]:
        import torch

        self.batches.rng = np.random.default_rng(0)  # the same batches every time
        total: dict[str, float] = {}
        was_training = model.training
        model.eval()
        probs = tuple(float(s == self.stage) for s in STAGES)
        with torch.no_grad():
            for _ in range(self.n):
                for k, v in losses(model, self.batches.sample(cfg.batch, probs, cfg, model.args.input), cfg,
                                   canonical, True).items():
                    total[k] = total.get(k, 0.0) + float(v) / self.n
        model.train(was_training)
        return total


def append_loss_row(path: Path, row: dict[str, float]) -> None:
    """One CSV row per checkpoint (header written with the first)."""
    new = not path.exists()
    with open(path, "a") as f:
        if new:
            f.write(",".join(row) + "\n")
        f.write(",".join(f"{v:.5g}" for v in row.values()) + "\n")


def save_checkpoint(path: Path, model, optimizer, step: int, cfg: TrainConfig, rng: np.random.Generator,
                    elapsed_s: float) -> None:
    import json

    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                "config": json.dumps(asdict(cfg)), "rng": json.dumps(rng.bit_generator.state),
                "torch_rng": torch.get_rng_state(), "elapsed_s": elapsed_s}, tmp)
    tmp.replace(path)


def initial_model(path: Path, model_options: dict):
    """The weights a fine-tune starts from, and their metadata; UserError if ``model_options`` (the
    run's ModelArgs overrides) ask for another model."""
    from arraydaemon.localizers.neural.model import ModelArgs
    from arraydaemon.localizers.neural.weights import load_model

    start, meta = load_model(path)
    if model_options and ModelArgs(**model_options) != start.args:
        raise UserError(f"{path}: the model options differ from these weights'; leave them out to fine-tune")
    return start, meta


def train(data_root: Path, run_dir: Path, cfg: TrainConfig, resume: bool = True, out_weights: Path | None = None,
          log=print) -> Path:
    """Train (or resume) a model; writes checkpoints to ``run_dir`` and the final safetensors."""
    import json

    import torch

    from arraydaemon.localizers.neural.model import ModelArgs, SpatialTransformer, canonical_directions
    from arraydaemon.localizers.neural.export import export_weights, set_torch_threads
    from arraydaemon.localizers.neural.weights import save_model

    set_torch_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    init_meta: dict = {}
    if cfg.init:  # a fine-tune: the starting model's arguments are the run's
        start, init_meta = initial_model(Path(cfg.init), cfg.model)
        cfg = replace(cfg, model=asdict(start.args))
    model = SpatialTransformer(ModelArgs(**cfg.model))
    if cfg.init:
        model.load_state_dict(start.state_dict())
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    ckpt_path = Path(run_dir) / "checkpoint.pt"
    step, elapsed = 0, 0.0
    if not resume:
        (Path(run_dir) / "losses.csv").unlink(missing_ok=True)
    if resume and ckpt_path.exists():
        ck = torch.load(ckpt_path, weights_only=True)
        saved = ModelArgs(**json.loads(ck["config"]).get("model", {}))
        if saved != model.args:
            changed = ", ".join(f"{k} {v!r} (now {getattr(model.args, k)!r})" for k, v in asdict(saved).items()
                                if getattr(model.args, k) != v)
            raise UserError(f"{ckpt_path}: the checkpoint's model differs: {changed}; "
                            "train with its options to resume, or with --fresh")
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        step, elapsed = int(ck["step"]), float(ck["elapsed_s"])
        rng.bit_generator.state = json.loads(ck["rng"])
        torch.set_rng_state(ck["torch_rng"])
        log(f"resumed from {ckpt_path} at step {step} ({elapsed / 60:.1f} min trained)")
    batches = Batches(data_root, rng)
    held_out = HeldOut(data_root, stage=2 if cfg.stage2_share > 0 else 1)
    canonical = torch.from_numpy(canonical_directions(model.args.canonical_dirs)).float()
    schedule = lambda s: cfg.lr * (min(1.0, (s + 1) / 300) * 0.5 * (1 + math.cos(math.pi * min(s, cfg.steps) / cfg.steps)))
    model.train()
    t_start = time.monotonic() - elapsed
    bar = tqdm(total=cfg.steps, initial=step, desc="training", unit="step")
    running: dict[str, float] = {}
    while step < cfg.steps:
        if step % cfg.rescan_every == 0:
            batches.rescan()
        for g in optimizer.param_groups:
            g["lr"] = schedule(step)
        if step < cfg.stage0_steps or not (batches.windows(1) or batches.windows(2)):
            stage_probs = (1.0, 0.0, 0.0)
        else:
            stage_probs = (0.2 * (1 - cfg.stage2_share), 0.8 * (1 - cfg.stage2_share), cfg.stage2_share)
        full = not cfg.pretrain or step >= cfg.pretrain_steps
        batch = batches.sample(cfg.batch, stage_probs, cfg, model.args.input)
        parts = losses(model, batch, cfg, canonical, full)
        optimizer.zero_grad(set_to_none=True)
        parts["total"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        for k, v in parts.items():
            v = float(v.detach())
            running[k] = 0.98 * running.get(k, v) + 0.02 * v
        bar.update()
        bar.set_postfix({k: f"{v:.3f}" for k, v in running.items() if k != "total"})
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            save_checkpoint(ckpt_path, model, optimizer, step, cfg, rng, time.monotonic() - t_start)
            if held_out.available and full:
                row = {"step": step, "minutes": (time.monotonic() - t_start) / 60}
                row.update({f"train_{k}": v for k, v in running.items()})
                row.update({f"heldout_{k}": v for k, v in held_out.losses(model, cfg, canonical).items()})
                append_loss_row(Path(run_dir) / "losses.csv", row)
    bar.close()
    elapsed = time.monotonic() - t_start
    model.eval()
    if out_weights is not None:
        meta = {"train_steps": step, "train_minutes": f"{elapsed / 60:.1f}", "train_config": json.dumps(asdict(cfg))}
        if cfg.init:
            meta["fine_tune_of"] = f"{Path(cfg.init).name} ({init_meta.get('train_steps', '?')} steps)"
        save_model(model, out_weights, meta)
        graph = export_weights(out_weights)  # what the daemon runs, tied to these weights
        log(f"wrote {out_weights} and its graph {graph.name} after {step} steps, {elapsed / 60:.1f} min")
    return ckpt_path
