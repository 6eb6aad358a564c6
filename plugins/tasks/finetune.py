"""``cls_finetune``: full fine-tuning classification (datasets.md section 2.2, BenchX's card).

Protocol (suite = BenchX): the whole network is trained: a deep copy of the checkpoint's image
encoder (the evaluated model is never touched) plus a head = normalization layer (BatchNorm1d by
default, or LayerNorm) + linear on the encoder's global feature (ResNet pooled / ViT CLS, before
any projection head). Targets:

* binary (a multi-label manifest with one label, e.g. RSNA's ``Pneumonia``): 2-way softmax with
  cross-entropy (BenchX; ``binary_head="sigmoid"`` gives one logit with BCE instead);
* multi-label (CheXpert's five labels): one logit per label, BCE-with-logits (masked where the
  ``uncertain="ignore"`` policy leaves a label out);
* multi-class (COVIDx ``class_index``): softmax with cross-entropy.

Optimisation: Adam (eps 1e-8) at ``lr`` (1e-5), batch 32, a linear warm-up over
``warmup_iters`` (50) then cosine decay to 0 at ``max_iters`` (3000), gradient-norm clip 1.0, AMP
(``AmpOptimWrapper``) only on CUDA. The mmengine Runner drives it (``IterBasedTrainLoop``, seed =
the unit's seed); every ``val_interval`` iterations a ``ValLoop`` scores the whole validation split
(:class:`WholeSetMetric`: F1 of the arg-max for binary, macro AUROC for multi-label, accuracy for
multi-class). :class:`BestStateHook` keeps the best validation state in memory and stops training
after ``patience`` validation rounds without improvement. The best state is scored once on the
whole test split with bootstrap intervals (:func:`score_classification`, seed = the unit's seed).

Deviations from BenchX, recorded in every result (``extra.deviations``): see :data:`DEVIATIONS`.
Fractions are the manifest's nested, stratified train subsets (section 3.3), as the linear probe.
"""

from __future__ import annotations

import copy
import itertools
import logging
import math
import os
import re
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from torch import nn

from place_bench.engine.downstream import quiet_runner_settings
from place_bench.engine.task import EvalContext, Task, Unit, UnitResult, per_dataset_overrides
from place_bench.evaluation import metrics as M
from place_bench.hookspecs import hookimpl
from place_bench.plugins.tasks._scoring import score_classification, with_ci

DEVIATIONS = [
    "RandomResizedCrop 224 replaced by the suite's seeded random crop (section 2.0: letterbox, random crop; "
    "eval: centre crop) and the section 2.0 normalization instead of BenchX's 0.4978/0.2449",
    "no horizontal flip (datasets.md section 5, pitfall 17: flips break laterality)",
    "validation every val_interval iterations, early-stopping patience counted in validation rounds "
    "(BenchX counts epochs)",
    "warm-up starts at warmup_start_factor * lr, not 0 (mmengine LinearLR)",
    "label fractions are the manifest's nested stratified subsets (section 3.3), not BenchX's train_1/train_10 lists",
]

VAL_METRICS = ("f1", "auroc", "accuracy", "f1_macro")
#: Settings ``by_dataset`` may change for one dataset (BenchX: COVIDx at lr 5e-4, batch 128).
DATASET_OVERRIDES = ("lr", "betas", "eps", "weight_decay", "batch_size", "eval_batch_size", "max_iters",
                     "warmup_iters", "warmup_start_factor", "clip_grad", "val_interval", "val_begin", "patience",
                     "val_metric", "head_norm", "binary_head")
DEFAULT_VAL_METRIC = {"binary": "f1", "multilabel": "auroc", "multiclass": "accuracy"}
_RUN_COUNTER = itertools.count()


# --------------------------------------------------------------------------------------------
# Model, data and the Runner's pieces
# --------------------------------------------------------------------------------------------


def build_head(in_dim: int, out_dim: int, norm: str | None, seed: int) -> nn.Sequential:
    """``norm`` layer (``"batchnorm"``, ``"layernorm"`` or None) + ``nn.Linear(in_dim, out_dim)``,
    the linear layer drawn from ``torch.Generator(seed)`` (nn.Linear's default init)."""
    layers: list[nn.Module] = []
    if norm == "batchnorm":
        layers.append(nn.BatchNorm1d(in_dim))
    elif norm == "layernorm":
        layers.append(nn.LayerNorm(in_dim))
    elif norm not in (None, "none"):
        raise ValueError(f"head_norm must be 'batchnorm', 'layernorm' or None, got {norm!r}")
    linear = nn.Linear(in_dim, out_dim)
    generator = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        bound = 1.0 / math.sqrt(in_dim)
        linear.weight.uniform_(-bound, bound, generator=generator)
        linear.bias.uniform_(-bound, bound, generator=generator)
    layers.append(linear)
    return nn.Sequential(*layers)


class FinetuneModel(BaseModel):
    """Image encoder + head for the Runner.

    ``kind``: ``"binary"`` (2-way softmax + CE, targets int64 class ids), ``"binary_sigmoid"``
    (1 logit + BCE), ``"multilabel"`` (BCE, targets float ``(B, L)``, optional ``target_mask``)
    or ``"multiclass"`` (CE). ``mode="loss"`` returns ``{"loss"}``; ``mode="predict"`` returns one
    ``{"score", "target"}`` per item (probabilities, for :class:`WholeSetMetric`);
    :meth:`probabilities` gives the scores of a batch.
    """

    def __init__(self, encoder: nn.Module, head: nn.Module, kind: str):
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.kind = kind

    def init_weights(self) -> None:
        """Nothing: the encoder holds the checkpoint's weights, the head is drawn at construction
        (the Runner calls this before training)."""

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(images).global_embedding)

    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        logits = self.logits(images).float()
        return logits.softmax(-1) if self.kind in ("binary", "multiclass") else logits.sigmoid()

    def forward(self, images: torch.Tensor, targets: torch.Tensor | None = None,
                target_mask: torch.Tensor | None = None, mode: str = "loss"):
        if mode == "predict":
            scores = self.probabilities(images).detach().cpu()
            return [{"score": s, "target": t} for s, t in zip(scores, targets.detach().cpu())]
        if mode != "loss":
            raise ValueError(f"cls_finetune runs in modes 'loss' and 'predict', not {mode!r}")
        logits = self.logits(images).float()
        if self.kind in ("binary", "multiclass"):
            loss = F.cross_entropy(logits, targets.long())
        else:
            per_cell = F.binary_cross_entropy_with_logits(logits, targets.float().reshape(logits.shape),
                                                          reduction="none")
            if target_mask is None:
                loss = per_cell.mean()
            else:
                mask = target_mask.float().reshape(logits.shape)
                loss = (per_cell * mask).sum() / mask.sum().clamp(min=1.0)
        return {"loss": loss}


class FinetuneItems(torch.utils.data.Dataset):
    """A :class:`ClassificationDataset` as ``{"image", "target"[, "target_mask"]}`` items with the
    training target (binary: the single label as an int64 class id). Keys may be ``(index,
    epoch)`` (:class:`~place_bench.data.pairs.EpochIndexSampler`)."""

    def __init__(self, dataset, kind: str):
        self.dataset = dataset
        self.kind = kind
        self.metainfo = {"classes": list(dataset.label_names)}

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key) -> dict[str, torch.Tensor]:
        item = self.dataset[key]
        target = item["target"]
        if self.kind == "binary":
            target = target.reshape(-1)[0].round().long()
        out = {"image": item["image"], "target": target}
        if "target_mask" in item:
            out["target_mask"] = item["target_mask"]
        return out


def collate(items: Sequence[dict]) -> dict[str, torch.Tensor]:
    out = {"images": torch.stack([it["image"] for it in items]),
           "targets": torch.stack([it["target"] for it in items])}
    if "target_mask" in items[0]:
        out["target_mask"] = torch.stack([it["target_mask"] for it in items])
    return out


def stack_images(items: Sequence[dict]) -> torch.Tensor:
    return torch.stack([it["image"] for it in items])


def validation_score(name: str, scores: np.ndarray, targets: np.ndarray, kind: str) -> float:
    """The early-stopping metric on the whole validation split (nan when undefined).

    ``scores``: ``(N, K)`` probabilities; ``targets``: class ids (binary / multi-class) or ``(N, L)``
    0/1. ``f1`` (binary: of class 1, arg-max of the 2-way softmax or sigmoid >= 0.5), ``auroc``
    (macro over scorable labels / classes), ``accuracy``, ``f1_macro`` (multi-class).
    """
    if not np.isfinite(scores).all():  # a diverged model: no score
        return math.nan
    if kind == "binary_sigmoid":
        scores, targets = scores[:, 0], targets.reshape(-1).round().astype(np.int64)
    elif kind == "binary" and name == "auroc":
        scores = scores[:, 1]
    if name == "f1":
        return M.f1(scores, targets)
    if name == "auroc":
        return M.auroc(scores, targets)
    if name == "accuracy":
        return M.accuracy(scores, targets)
    if name == "f1_macro":
        return M.macro_f1(scores, targets, scores.shape[1])
    raise ValueError(f"val_metric must be one of {VAL_METRICS}, got {name!r}")


class WholeSetMetric(BaseMetric):
    """Collects every validation item's scores and computes ``metric`` once over the whole set."""

    default_prefix = "val"

    def __init__(self, metric: str, kind: str):
        super().__init__(collect_device="cpu", prefix="val")
        self.metric, self.kind = metric, kind

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        self.results.extend((s["score"].numpy(), s["target"].numpy()) for s in data_samples)

    def compute_metrics(self, results: list) -> dict[str, float]:
        scores = np.stack([r[0] for r in results]).astype(np.float64)
        targets = np.stack([r[1] for r in results])
        return {self.metric: float(validation_score(self.metric, scores, targets, self.kind))}


class BestStateHook(Hook):
    """After each validation: keep a CPU copy of the model's state when ``key`` improved (strictly
    greater; nan never improves), stop training after ``patience`` rounds without improvement.
    Rounds before the first defined value do not count (a metric undefined on the validation split,
    e.g. a label without positives, trains to ``max_iters`` and the final state is scored)."""

    priority = "LOW"

    def __init__(self, key: str, patience: int):
        self.key, self.patience = key, int(patience)
        self.best_value = -math.inf
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_iter: int | None = None
        self.waited = 0
        self.history: list[list] = []
        self.stopped_early = False

    def after_val_epoch(self, runner, metrics: dict | None = None) -> None:
        value = float((metrics or {}).get(self.key, math.nan))
        self.history.append([int(runner.iter), None if math.isnan(value) else value])
        if not math.isnan(value) and value > self.best_value:
            model = runner.model.module if hasattr(runner.model, "module") else runner.model
            self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            self.best_value, self.best_iter, self.waited = value, int(runner.iter), 0
            return
        if self.best_state is None:  # undefined on this validation set so far: nothing to stop on
            return
        self.waited += 1
        if self.waited >= self.patience:
            runner.train_loop.stop_training = True
            self.stopped_early = True


def _release(runner) -> None:
    """Close the Runner's log files and drop its named mmengine instances (a benchmark runs many; its
    default scope would otherwise stay current for later registry builds)."""
    from mmengine.logging import MessageHub, MMLogger
    from mmengine.registry import DefaultScope
    from mmengine.visualization import Visualizer

    logger = runner.logger
    for handler in list(logger.handlers):
        if isinstance(handler, logging.FileHandler):
            handler.close()
            logger.removeHandler(handler)
    name = runner.experiment_name
    for cls in (MMLogger, Visualizer, MessageHub, DefaultScope):
        cls._instance_dict.pop(name, None)


# --------------------------------------------------------------------------------------------
# The task
# --------------------------------------------------------------------------------------------


class FinetuneTask(Task):
    """Full fine-tuning classification; see the module docstring for the protocol.

    :param labels, labels_by_dataset, uncertain, pipeline, splits: as the linear probe
        (:class:`~place_bench.plugins.tasks.linear_probe.LinearProbeTask`); ``pipeline=None`` takes
        the checkpoint's pretraining pipeline (``EvalContext.pipeline``).
    :param lr, betas, eps, weight_decay: Adam.
    :param batch_size: training batch; ``eval_batch_size``: validation / test batch (default the same).
    :param max_iters, warmup_iters, warmup_start_factor: iterations, linear warm-up (from
        ``warmup_start_factor * lr``), then cosine to 0 at ``max_iters``.
    :param clip_grad: gradient-norm clip (None: none).
    :param val_interval, val_begin: validate every ``val_interval`` iterations from ``val_begin``
        (and at ``max_iters``); ``patience``: validation rounds without improvement before stopping.
    :param val_metric: early-stopping metric (:data:`VAL_METRICS`); None = F1 (binary), macro AUROC
        (multi-label), accuracy (multi-class).
    :param head_norm: ``"batchnorm"``, ``"layernorm"`` or None; ``binary_head``: ``"softmax"``
        (2-way, BenchX) or ``"sigmoid"``.
    :param amp: ``"auto"`` (mixed precision when CUDA is available), True or False.
    :param num_workers: data-loader workers; ``log_level``/``log_interval``: the Runner's logging.
    :param n_resamples: bootstrap resamples of the test metrics.
    :param variant: the units' variant name (None).
    :param by_dataset: dataset name -> ``{setting: value}`` overriding the settings above for that
        dataset (:data:`DATASET_OVERRIDES`; BenchX: ``covidx=dict(lr=5e-4, batch_size=128)``).
    """

    name = "cls_finetune"
    needs = frozenset({"image"})
    uses_fractions = True

    def __init__(
        self,
        labels: Sequence[str] | None = None,
        labels_by_dataset: dict | None = None,
        uncertain: str = "mgca",
        pipeline: dict | None = None,
        splits: dict | None = None,
        lr: float = 1e-5,
        betas: Sequence[float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        max_iters: int = 3000,
        warmup_iters: int = 50,
        warmup_start_factor: float = 1e-3,
        clip_grad: float | None = 1.0,
        val_interval: int = 100,
        val_begin: int = 1,
        patience: int = 10,
        val_metric: str | None = None,
        head_norm: str | None = "batchnorm",
        binary_head: str = "softmax",
        amp: bool | str = "auto",
        num_workers: int = 4,
        log_level: str = "WARNING",
        log_interval: int = 50,
        n_resamples: int = 1000,
        variant: str | None = None,
        by_dataset: dict | None = None,
    ):
        settings = {k: v for k, v in locals().items() if k not in ("self", "__class__", "by_dataset")}
        self.by_dataset = per_dataset_overrides(by_dataset, DATASET_OVERRIDES)
        self._settings = settings
        if val_metric is not None and val_metric not in VAL_METRICS:
            raise ValueError(f"val_metric must be one of {VAL_METRICS} or None, got {val_metric!r}")
        if binary_head not in ("softmax", "sigmoid"):
            raise ValueError(f"binary_head must be 'softmax' or 'sigmoid', got {binary_head!r}")
        if head_norm not in ("batchnorm", "layernorm", None, "none"):
            raise ValueError(f"head_norm must be 'batchnorm', 'layernorm' or None, got {head_norm!r}")
        if amp not in ("auto", True, False):
            raise ValueError(f"amp must be 'auto', True or False, got {amp!r}")
        if int(max_iters) < 1 or int(val_interval) < 1 or int(patience) < 1 or int(batch_size) < 1:
            raise ValueError("max_iters, val_interval, patience and batch_size must be >= 1")
        if not 0.0 < float(warmup_start_factor) <= 1.0:
            raise ValueError(f"warmup_start_factor must be in (0, 1], got {warmup_start_factor}")
        self.labels = list(labels) if labels else None
        self.labels_by_dataset = {k: list(v) for k, v in (labels_by_dataset or {}).items()}
        self.uncertain = uncertain
        self.pipeline = None if pipeline is None else dict(pipeline)
        self.splits = {"train": "train", "val": "valid", "test": "test", **(splits or {})}
        self.optim_cfg = dict(lr=float(lr), betas=[float(b) for b in betas], eps=float(eps),
                              weight_decay=float(weight_decay))
        self.batch_size = int(batch_size)
        self.eval_batch_size = int(eval_batch_size or batch_size)
        self.max_iters, self.warmup_iters = int(max_iters), int(warmup_iters)
        self.warmup_start_factor = float(warmup_start_factor)
        self.clip_grad = None if clip_grad is None else float(clip_grad)
        self.val_interval, self.val_begin, self.patience = int(val_interval), int(val_begin), int(patience)
        self.val_metric = val_metric
        self.head_norm = None if head_norm == "none" else head_norm
        self.binary_head = binary_head
        self.amp = amp
        self.num_workers = int(num_workers)
        self.log_level, self.log_interval = str(log_level), int(log_interval)
        self.n_resamples = int(n_resamples)
        self.variant = variant

    def protocol(self) -> dict[str, Any]:
        return {"labels": self.labels, "labels_by_dataset": self.labels_by_dataset, "uncertain": self.uncertain,
                "pipeline": self.pipeline, "splits": self.splits,
                "optimizer": dict(type="Adam", **self.optim_cfg), "batch_size": self.batch_size,
                "schedule": {"max_iters": self.max_iters, "warmup_iters": self.warmup_iters,
                             "warmup_start_factor": self.warmup_start_factor, "decay": "cosine to 0"},
                "clip_grad": self.clip_grad, "amp": self.amp,
                "validation": {"interval": self.val_interval, "begin": self.val_begin, "patience": self.patience,
                               "metric": self.val_metric or DEFAULT_VAL_METRIC},
                "head": {"norm": self.head_norm, "binary": self.binary_head},
                "features": "image_encoder.global_embedding, whole encoder trainable (deep copy)",
                "augmentation": "section 2.0 seeded random crop, no flip", "by_dataset": self.by_dataset}

    def for_dataset(self, name: str) -> "FinetuneTask":
        """This task with ``by_dataset[name]`` applied (itself when there is none)."""
        overrides = self.by_dataset.get(name)
        return self if not overrides else type(self)(**{**self._settings, **overrides})

    def units(self, fractions, seeds) -> list[Unit]:
        return [Unit(u.fraction, u.seed, self.variant) for u in super().units(fractions, seeds)]

    # -- data -------------------------------------------------------------------------------
    def _pipeline(self, ctx: EvalContext) -> dict:
        return dict(ctx.pipeline) if self.pipeline is None else self.pipeline

    def _labels(self, ctx: EvalContext) -> list[str] | None:
        return self.labels_by_dataset.get(ctx.dataset.name, self.labels)

    def _dataset(self, ctx: EvalContext, split: str, fraction: float = 1.0, train: bool = False, seed: int = 0):
        from place_bench.data.loaders import ClassificationDataset

        return ClassificationDataset(ctx.dataset.manifest, ctx.dataset.root, split=split, fraction=fraction,
                                     pipeline=self._pipeline(ctx), train=train, seed=seed,
                                     uncertain=self.uncertain, labels=self._labels(ctx))

    def _kind(self, dataset) -> str:
        if dataset.target_kind == "multiclass":
            return "multiclass"
        if len(dataset.label_names) == 1:
            return "binary" if self.binary_head == "softmax" else "binary_sigmoid"
        return "multilabel"

    def _unit_dir(self, ctx: EvalContext, unit: Unit) -> Path:
        subject = re.sub(r"[^A-Za-z0-9]+", "", ctx.subject_id.replace("init:", "init"))[:16]
        frac = "full" if unit.fraction is None else f"{unit.fraction:g}"
        name = f"{ctx.dataset.name}-{ctx.dataset.protocol}-{subject}-f{frac}-s{unit.seed}"
        if unit.variant:
            name += f"-{unit.variant}"
        return Path(ctx.work_dir) / "finetune" / re.sub(r"[^A-Za-z0-9._-]+", "_", name)

    # -- training ---------------------------------------------------------------------------
    def param_schedulers(self) -> list[dict]:
        """mmengine scheduler configs: ``LinearLR`` from ``warmup_start_factor`` reaching the full lr
        at iteration ``warmup_iters - 1``, then ``CosineAnnealingLR`` to 0 at ``max_iters``. A warm-up
        of one iteration or less is none (mmengine's ramp needs two steps)."""
        warmup = min(self.warmup_iters, self.max_iters)
        warmup = warmup if warmup > 1 else 0
        schedulers: list[dict] = []
        if warmup:
            schedulers.append(dict(type="LinearLR", start_factor=self.warmup_start_factor, end_factor=1.0,
                                   begin=0, end=warmup, by_epoch=False))
        if self.max_iters > warmup:
            schedulers.append(dict(type="CosineAnnealingLR", T_max=self.max_iters - warmup, eta_min=0.0,
                                   begin=warmup, end=self.max_iters, by_epoch=False))
        return schedulers

    def finetune(self, ctx: EvalContext, unit: Unit) -> tuple[FinetuneModel, dict[str, Any]]:
        """Fine-tune a copy of ``ctx.model``'s image encoder for ``unit``; return the model with its
        best validation state loaded (eval mode) and a JSON-able log."""
        if self.by_dataset.get(ctx.dataset.name):
            return self.for_dataset(ctx.dataset.name).finetune(ctx, unit)
        from mmengine.evaluator import Evaluator
        from mmengine.runner import Runner, set_random_seed

        from place_bench.data.pairs import register_sampler

        register_sampler()
        seed = int(unit.seed)
        fraction = 1.0 if unit.fraction is None else float(unit.fraction)
        train_raw = self._dataset(ctx, self.splits["train"], fraction, train=True, seed=seed)
        val_raw = self._dataset(ctx, self.splits["val"])
        kind = self._kind(train_raw)
        names = list(train_raw.label_names)
        out_dim = {"binary": 2, "binary_sigmoid": 1}.get(kind, len(names))
        metric = self.val_metric or DEFAULT_VAL_METRIC["binary" if kind.startswith("binary") else kind]

        set_random_seed(seed)
        encoder = copy.deepcopy(ctx.model.image_encoder)
        encoder.requires_grad_(True)
        head = build_head(int(encoder.feature_dim), out_dim, self.head_norm, seed)
        model = FinetuneModel(encoder, head, kind)

        use_amp = torch.cuda.is_available() if self.amp == "auto" else bool(self.amp)
        optim_wrapper: dict[str, Any] = dict(type="AmpOptimWrapper" if use_amp else "OptimWrapper",
                                             optimizer=dict(type="Adam", **self.optim_cfg))
        if self.clip_grad is not None:
            optim_wrapper["clip_grad"] = dict(max_norm=self.clip_grad)
        schedulers = self.param_schedulers()

        best = BestStateHook(f"val/{metric}", self.patience)
        work_dir = self._unit_dir(ctx, unit)
        runner = Runner(
            model=model,
            work_dir=str(work_dir),
            experiment_name=f"cls_finetune_{work_dir.name}_{os.getpid()}_{next(_RUN_COUNTER)}",
            train_dataloader=dict(
                dataset=FinetuneItems(train_raw, kind),
                sampler=dict(type="EpochIndexSampler", shuffle=True, seed=seed, infinite=True),
                batch_size=self.batch_size, num_workers=self.num_workers, persistent_workers=False,
                drop_last=True, collate_fn=collate),
            val_dataloader=dict(
                dataset=FinetuneItems(val_raw, kind),
                sampler=dict(type="DefaultSampler", shuffle=False),
                batch_size=self.eval_batch_size, num_workers=self.num_workers, persistent_workers=False,
                collate_fn=collate),
            val_evaluator=Evaluator([WholeSetMetric(metric, kind)]),
            train_cfg=dict(type="IterBasedTrainLoop", max_iters=self.max_iters, val_interval=self.val_interval,
                           val_begin=self.val_begin),
            val_cfg=dict(type="ValLoop"),
            optim_wrapper=optim_wrapper,
            param_scheduler=schedulers or None,
            custom_hooks=[best],
            **quiet_runner_settings(self.log_interval, seed, self.log_level, "mmengine"),
            cfg=dict(task=self.name, dataset=ctx.dataset.name, unit=dict(fraction=unit.fraction, seed=seed,
                                                                         variant=unit.variant),
                     protocol=self.protocol()),
        )
        t0 = time.perf_counter()
        try:
            runner.train()
            iters = int(runner.iter)
        finally:
            _release(runner)
        if best.best_state is not None:
            model.load_state_dict(best.best_state)
        model.eval()
        log = {"kind": kind, "out_dim": out_dim, "label_names": names, "n_train": len(train_raw),
               "n_val": len(val_raw), "iters": iters, "best_iter": best.best_iter,
               "val_metric": metric, "best_val": None if best.best_state is None else best.best_value,
               "val_history": best.history, "stopped_early": best.stopped_early, "amp": use_amp,
               "train_seconds": round(time.perf_counter() - t0, 3), "work_dir": str(work_dir)}
        if best.best_state is None:
            log["note"] = f"val {metric} was never defined; the final state was scored"
        return model, log

    @torch.no_grad()
    def predict(self, model: FinetuneModel, dataset, batch_size: int | None = None) -> np.ndarray:
        """Probabilities ``(N, K)`` of every item of ``dataset`` (a ClassificationDataset), in order."""
        device = next(model.parameters()).device
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size or self.eval_batch_size, shuffle=False,
                                             num_workers=self.num_workers, collate_fn=stack_images)
        model.eval()
        return np.concatenate([model.probabilities(images.to(device)).cpu().double().numpy() for images in loader])

    def run(self, ctx: EvalContext, units: Sequence[Unit]) -> Iterator[UnitResult]:
        task = self.for_dataset(ctx.dataset.name)
        test_set = task._dataset(ctx, task.splits["test"])
        for unit in units:
            t0 = time.perf_counter()
            model, log = task.finetune(ctx, unit)
            probs = task.predict(model, test_set)
            kind = log["kind"]
            scores = probs[:, 1] if kind == "binary" else (probs[:, 0] if kind == "binary_sigmoid" else probs)
            targets = test_set.targets
            metrics, primary, extra = score_classification(scores, targets, test_set.label_names,
                                                           task.n_resamples, seed=unit.seed)
            if kind.startswith("binary"):  # BenchX also reports precision and recall of class 1
                t = np.asarray(targets).reshape(-1).astype(np.int64)
                for name, fn in (("precision", M.precision), ("recall", M.recall)):
                    metrics[name] = with_ci(fn, scores, t, n_resamples=task.n_resamples, seed=unit.seed)
            extra.update(log, deviations=DEVIATIONS, seconds=round(time.perf_counter() - t0, 3),
                         settings={"lr": task.optim_cfg["lr"], "batch_size": task.batch_size,
                                   "max_iters": task.max_iters, "dataset_overrides": self.by_dataset.get(ctx.dataset.name)})
            del model
            value = metrics[primary]["value"]
            ctx.log(f"cls_finetune {ctx.dataset.name} fraction={unit.fraction} seed={unit.seed}: {log['iters']} iters, "
                    f"best val {log['val_metric']}={log['best_val']} at {log['best_iter']}, test {primary}={value:.4f}")
            yield UnitResult(unit, metrics, primary, n_test=len(targets), extra=extra)


@hookimpl
def place_bench_register(registrar):
    registrar.add("task", "cls_finetune", FinetuneTask)
