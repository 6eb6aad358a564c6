"""Pretraining on the mmengine Runner.

``run_pretrain(cfg)`` builds the model from ``cfg.model``, the image-report pairs
from ``cfg.data``, and a Runner from the config's Runner keys (``optim_wrapper``,
``param_scheduler``, ``train_cfg``, ``default_hooks``, ...), trains, and exports
the suite checkpoint ``<work_dir>/model.safetensors`` with its card.

The config's ``pretrain`` section holds the engine's own settings:
``amp`` (``"auto"``: mixed precision where CUDA is available), ``checkpoint_interval``
(iterations between Runner checkpoints), ``max_keep_ckpts``, ``log_interval``.
Distributed training: start the same command under ``torchrun``; the launcher
and backend (gloo on CPU, nccl on GPU) follow from the environment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from place_bench.config import to_plain

PRETRAIN_DEFAULTS = dict(amp="auto", checkpoint_interval=500, max_keep_ckpts=3, log_interval=10)


def _distributed() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def resolve_source(split_cfg: dict) -> dict:
    """A data split config with ``source=dict(type=<dataset>, ...)`` turned into one with
    ``manifest=``: the dataset component's ``materialize()`` makes (or finds) the manifest."""
    split_cfg = dict(split_cfg)
    source = split_cfg.pop("source", None)
    if source is None:
        return split_cfg
    if "manifest" in split_cfg:
        raise ValueError("data: give either manifest or source for a split, not both")
    from place_bench import registry as registries

    component = registries.build("dataset", source)
    if not hasattr(component, "materialize"):
        raise ValueError(f"data source {source.get('type')!r} cannot make a manifest by itself; run `place-bench data prepare` and give manifest=")
    split_cfg["manifest"] = str(component.materialize())
    return split_cfg


def build_pretrain_runner(cfg, work_dir: str | os.PathLike | None = None, resume: bool = False):
    """The Runner for ``cfg`` (a validated mmengine Config), ready to ``train()``."""
    from mmengine.runner import Runner, set_random_seed

    from place_bench.api import build_model
    from place_bench.data.pairs import ImageReportDataset, PairCollate, register_sampler
    from place_bench.engine.hooks import ExportHook, ObjectiveEpochHook, RNGStateHook
    from place_bench.engine.model import PretrainModel
    from place_bench.model.checkpoint import register_mmengine_safe_globals, save_checkpoint

    register_mmengine_safe_globals()
    register_sampler()
    settings = dict(PRETRAIN_DEFAULTS, **to_plain(cfg.get("pretrain") or {}))
    unknown = set(settings) - set(PRETRAIN_DEFAULTS)
    if unknown:
        raise ValueError(f"pretrain: unknown keys {sorted(unknown)}; known: {sorted(PRETRAIN_DEFAULTS)}")
    data = to_plain(cfg.get("data") or {})
    if "train" not in data:
        raise ValueError("data.train is missing: dict(manifest=..., split='train', ...)")
    seed = int(cfg.get("seed", 0))
    work_dir = Path(work_dir or cfg.get("work_dir") or Path("work_dirs") / Path(cfg.filename or "pretrain").stem)

    # Seed before building: random initialisation must not depend on what ran before.
    set_random_seed(seed)
    vlm = build_model(cfg)
    dataset = ImageReportDataset(pipeline=data.get("pipeline"), seed=seed, **resolve_source(data["train"]))
    model = PretrainModel(vlm)

    optim_wrapper = to_plain(cfg.get("optim_wrapper") or {})
    if settings["amp"] == "auto":
        use_amp = torch.cuda.is_available()
    else:
        use_amp = bool(settings["amp"])
    if use_amp and optim_wrapper.get("type", "OptimWrapper") == "OptimWrapper":
        optim_wrapper["type"] = "AmpOptimWrapper"

    full_config = to_plain(cfg)
    by_epoch = bool(full_config.get("train_cfg", {}).get("by_epoch", False))

    def export(trained_vlm) -> Path:
        return save_checkpoint(
            trained_vlm,
            work_dir / "model.safetensors",
            full_config,
            data_fingerprint=dataset.fingerprint,
            extra={"seed": seed, "source": "pretrain", "pairs": len(dataset), "skipped_empty_reports": dataset.skipped_empty},
        )

    default_hooks = dict(
        timer=dict(type="IterTimerHook"),
        logger=dict(type="LoggerHook", interval=settings["log_interval"]),
        param_scheduler=dict(type="ParamSchedulerHook"),
        checkpoint=dict(
            type="CheckpointHook",
            interval=settings["checkpoint_interval"],
            by_epoch=False,
            save_last=True,
            max_keep_ckpts=settings["max_keep_ckpts"],
        ),
        sampler_seed=dict(type="DistSamplerSeedHook"),
    )
    default_hooks.update(to_plain(cfg.get("default_hooks") or {}))
    runner_keys = {"train_cfg", "param_scheduler", "log_processor", "env_cfg", "visualizer", "custom_hooks"}
    extra = {k: to_plain(cfg[k]) for k in runner_keys if k in cfg}
    extra.setdefault("log_processor", dict(by_epoch=False))
    extra.setdefault(
        "visualizer",
        dict(type="Visualizer", vis_backends=[dict(type="LocalVisBackend"), dict(type="TensorboardVisBackend")]),
    )
    env_cfg = extra.pop("env_cfg", {}) or {}
    env_cfg.setdefault("dist_cfg", dict(backend="nccl" if torch.cuda.is_available() else "gloo"))
    if _distributed() and not torch.cuda.is_available():
        # mmengine's pytorch launcher pins a CUDA device; on CPU the process group
        # is started here (gloo) so the Runner finds it ready, and DDP gets no device ids.
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group(backend=env_cfg["dist_cfg"].get("backend", "gloo"))
        wrapper = dict(full_config.get("model_wrapper_cfg") or {})
        wrapper.setdefault("type", "MMDistributedDataParallel")
        wrapper["device_ids"] = None
        full_config["model_wrapper_cfg"] = wrapper
    custom_hooks = list(extra.pop("custom_hooks", []) or [])
    custom_hooks += [RNGStateHook(), ObjectiveEpochHook(), ExportHook(export)]

    return Runner(
        model=model,
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=dataset,
            sampler=dict(type="EpochIndexSampler", shuffle=True, seed=seed, infinite=not by_epoch),
            batch_size=int(data.get("batch_size", 16)),
            num_workers=int(data.get("num_workers", 0)),
            persistent_workers=False,
            drop_last=True,
            collate_fn=PairCollate(vlm.tokenize),
        ),
        optim_wrapper=optim_wrapper,
        default_hooks=default_hooks,
        custom_hooks=custom_hooks,
        env_cfg=env_cfg,
        launcher="pytorch" if _distributed() else "none",
        randomness=dict(seed=seed),
        resume=resume,
        default_scope="mmengine",
        cfg=dict(full_config),
        **extra,
    )


def run_pretrain(cfg, work_dir: str | os.PathLike | None = None, resume: bool = False) -> Path:
    """Train as configured; return the exported suite checkpoint path."""
    runner = build_pretrain_runner(cfg, work_dir, resume)
    runner.train()
    return Path(runner.work_dir) / "model.safetensors"
