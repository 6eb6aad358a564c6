"""``cls_linear``: linear probe on frozen, cached image features (datasets.md section 2.1).

Protocol (suite canonical = MGCA's card): the image encoder is frozen in eval mode and its
global feature (ResNet pooled / ViT CLS, before any projection head) is extracted once per
split through the section 2.0 pipeline with the eval transform (letterbox 256, centre crop 224)
and cached (:mod:`place_bench.engine.feature_cache`); one linear layer is trained per (label
fraction, seed) with AdamW (lr 5e-4, betas 0.9/0.999, weight decay 1e-6, batch 48, no
scheduler), BCE-with-logits for multi-label/binary targets and cross-entropy for multi-class,
for at most 50 epochs with early stopping on the validation loss (patience 10); the head of the
best validation epoch is scored once on the whole test split.

Deviation from MGCA, recorded in every result (``extra.deviations``): training features come
from the eval transform, not MGCA's random crops / colour jitter, because features are cached.
Fractions are the manifest's nested, stratified subsets (section 3.3).
"""

from __future__ import annotations

import copy
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from place_bench.engine.feature_cache import cached_features
from place_bench.engine.task import EvalContext, Task, Unit, UnitFailure, UnitResult, per_dataset_overrides
from place_bench.hookspecs import hookimpl
from place_bench.plugins.tasks._scoring import score_classification

DEVIATIONS = ["train features from the eval transform (cached), no MGCA augmentation"]


def train_linear_head(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    val_x: torch.Tensor,
    val_y: torch.Tensor,
    seed: int,
    lr: float = 5e-4,
    weight_decay: float = 1e-6,
    betas: Sequence[float] = (0.9, 0.999),
    batch_size: int = 48,
    max_epochs: int = 50,
    patience: int = 10,
    num_classes: int | None = None,
    optimizer: str = "adamw",
    clip_grad: float | None = None,
    plateau: dict | None = None,
) -> tuple[nn.Linear, dict[str, Any]]:
    """Train ``nn.Linear(D, K)`` on features; return the best-validation-loss head and a log.

    ``optimizer``: ``"adamw"`` (MGCA) or ``"adam"`` (GLoRIA, weight decay as L2);
    ``clip_grad``: max gradient norm or None; ``plateau``: ``ReduceLROnPlateau`` keywords
    (``factor``, ``patience``) stepped on the validation loss each epoch, or None (no scheduler).

    ``train_y``/``val_y``: float ``(N, L)`` multi-hot (BCE-with-logits, K = L; a binary task is
    L = 1) or int64 ``(N,)`` class ids (cross-entropy, K = ``num_classes``, default the largest
    id seen + 1). Initialisation and batch order come from ``torch.Generator(seed)``.
    """
    generator = torch.Generator().manual_seed(int(seed))
    multiclass = train_y.dtype == torch.long
    if multiclass:
        out_dim = int(num_classes or max(int(train_y.max()), int(val_y.max())) + 1)
        loss_fn: nn.Module = nn.CrossEntropyLoss()
    else:
        train_y, val_y = train_y.float().reshape(len(train_y), -1), val_y.float().reshape(len(val_y), -1)
        out_dim = train_y.shape[1]
        loss_fn = nn.BCEWithLogitsLoss()
    head = nn.Linear(train_x.shape[1], out_dim)
    with torch.no_grad():  # nn.Linear's default init, drawn from our generator
        bound = 1.0 / np.sqrt(train_x.shape[1])
        head.weight.uniform_(-bound, bound, generator=generator)
        head.bias.uniform_(-bound, bound, generator=generator)
    if optimizer not in ("adamw", "adam"):
        raise ValueError(f"optimizer must be 'adamw' or 'adam', got {optimizer!r}")
    factory = torch.optim.AdamW if optimizer == "adamw" else torch.optim.Adam
    opt = factory(head.parameters(), lr=lr, betas=tuple(betas), weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **plateau) if plateau else None
    best_loss, best_state, best_epoch, waited, epoch = float("inf"), copy.deepcopy(head.state_dict()), -1, 0, 0
    for epoch in range(int(max_epochs)):
        head.train()
        order = torch.randperm(len(train_x), generator=generator)
        for start in range(0, len(order), int(batch_size)):
            idx = order[start:start + int(batch_size)]
            opt.zero_grad(set_to_none=True)
            loss_fn(head(train_x[idx]), train_y[idx]).backward()
            if clip_grad:
                nn.utils.clip_grad_norm_(head.parameters(), clip_grad)
            opt.step()
        head.eval()
        with torch.no_grad():
            val_loss = float(loss_fn(head(val_x), val_y))
        if scheduler is not None:
            scheduler.step(val_loss)
        if val_loss < best_loss:
            best_loss, best_state, best_epoch, waited = val_loss, copy.deepcopy(head.state_dict()), epoch, 0
        else:
            waited += 1
            if waited >= int(patience):
                break
    head.load_state_dict(best_state)
    head.eval()
    return head, {"epochs": epoch + 1, "best_epoch": best_epoch + 1, "best_val_loss": best_loss}


def probabilities(head: nn.Linear, features: torch.Tensor, multiclass: bool) -> np.ndarray:
    with torch.no_grad():
        logits = head(features)
    if multiclass:
        return logits.softmax(-1).numpy()
    probs = logits.sigmoid().numpy()
    return probs[:, 0] if probs.shape[1] == 1 else probs


class LinearProbeTask(Task):
    """Frozen-feature linear probe; see the module docstring for the protocol.

    :param labels: label names to predict (multi-label manifests; default all); ignored for
        multi-class manifests.
    :param labels_by_dataset: dataset name -> label names, overriding ``labels`` for that dataset
        (CheXpert: the five competition labels).
    :param uncertain: CheXpert ``-1`` policy: ``"mgca"`` (U-Ones/U-Zeros per label), ``"ones"``,
        ``"zeros"``.
    :param pipeline: section 2.0 transform settings (``CXRTransform`` keywords); None = the
        checkpoint's pretraining pipeline (``EvalContext.pipeline``), else the section 2.0 default.
    :param splits: ``dict(train=, val=, test=)`` split names of the manifest.
    :param optimizer, clip_grad, plateau: see :func:`train_linear_head`;
    :param by_dataset: dataset name -> head settings overriding the defaults for that dataset
        (GLoRIA's card: lr 1e-4 CheXpert, 5e-4 RSNA).
    """

    name = "cls_linear"
    needs = frozenset({"image"})
    uses_fractions = True

    def __init__(
        self,
        labels: Sequence[str] | None = None,
        labels_by_dataset: dict | None = None,
        uncertain: str = "mgca",
        pipeline: dict | None = None,
        splits: dict | None = None,
        lr: float = 5e-4,
        weight_decay: float = 1e-6,
        betas: Sequence[float] = (0.9, 0.999),
        batch_size: int = 48,
        max_epochs: int = 50,
        patience: int = 10,
        optimizer: str = "adamw",
        clip_grad: float | None = None,
        plateau: dict | None = None,
        by_dataset: dict | None = None,
        feature_batch_size: int = 32,
        cache: bool = True,
        n_resamples: int = 1000,
        variant: str | None = None,
    ):
        self.labels = list(labels) if labels else None
        self.labels_by_dataset = {k: list(v) for k, v in (labels_by_dataset or {}).items()}
        self.uncertain = uncertain
        self.pipeline = None if pipeline is None else dict(pipeline)
        self.splits = {"train": "train", "val": "valid", "test": "test", **(splits or {})}
        self.head_cfg = dict(lr=lr, weight_decay=weight_decay, betas=list(betas), batch_size=batch_size,
                             max_epochs=max_epochs, patience=patience, optimizer=optimizer, clip_grad=clip_grad,
                             plateau=dict(plateau) if plateau else None)
        self.by_dataset = per_dataset_overrides(by_dataset, self.head_cfg)
        self.feature_batch_size = int(feature_batch_size)
        self.cache = bool(cache)
        self.n_resamples = int(n_resamples)
        self.variant = variant

    def protocol(self) -> dict[str, Any]:
        return {"labels": self.labels, "labels_by_dataset": self.labels_by_dataset, "uncertain": self.uncertain, "pipeline": self.pipeline, "splits": self.splits,
                "head": self.head_cfg, "by_dataset": self.by_dataset, "features": "image_encoder.global_embedding, eval transform, frozen (eval mode)"}

    def units(self, fractions, seeds) -> list[Unit]:
        return [Unit(u.fraction, u.seed, self.variant) for u in super().units(fractions, seeds)]

    def _dataset(self, ctx: EvalContext, split: str, fraction: float = 1.0):
        from place_bench.data.loaders import ClassificationDataset

        return ClassificationDataset(ctx.dataset.manifest, ctx.dataset.root, split=split, fraction=fraction,
                                     pipeline=self._pipeline(ctx), train=False, uncertain=self.uncertain,
                                     labels=self._labels(ctx))

    def _pipeline(self, ctx: EvalContext) -> dict:
        return dict(ctx.pipeline) if self.pipeline is None else self.pipeline

    def _labels(self, ctx: EvalContext) -> list[str] | None:
        return self.labels_by_dataset.get(ctx.dataset.name, self.labels)

    def _features(self, ctx: EvalContext, split: str):
        dataset = self._dataset(ctx, split)
        settings = {"pipeline": self._pipeline(ctx), "uncertain": self.uncertain, "labels": self._labels(ctx)}
        cache_dir = ctx.cache_dir if self.cache else None
        feats = cached_features(ctx.model, dataset, ctx.subject_id, ctx.dataset.fingerprint, settings, cache_dir,
                                self.feature_batch_size, ctx.device)
        return dataset, feats

    def run(self, ctx: EvalContext, units: Sequence[Unit]) -> Iterator[UnitResult]:
        train_set, train = self._features(ctx, self.splits["train"])
        _, val = self._features(ctx, self.splits["val"])
        test_set, test = self._features(ctx, self.splits["test"])
        ctx.log(f"cls_linear: features train {tuple(train.features.shape)} val {tuple(val.features.shape)} "
                f"test {tuple(test.features.shape)} (cache {'hit' if train.hit and test.hit else 'filled'})")
        multiclass = test.targets.dtype == torch.long
        subsets: dict[float, torch.Tensor] = {}  # fraction -> train rows, read once for every seed
        for unit in units:
            rows = torch.arange(len(train.sample_ids))
            if unit.fraction is not None and unit.fraction < 1.0:
                if unit.fraction not in subsets:
                    try:
                        subset = self._dataset(ctx, self.splits["train"], unit.fraction)
                    except ValueError as exc:  # e.g. a fraction that leaves no image: this unit only
                        yield UnitFailure(unit, f"{type(exc).__name__}: {exc}")
                        continue
                    subsets[unit.fraction] = train.rows([r["sample_id"] for r in subset.rows])
                rows = subsets[unit.fraction]
            head, log = train_linear_head(train.features[rows], train.targets[rows], val.features, val.targets,
                                          seed=unit.seed, num_classes=len(test_set.label_names) if multiclass else None,
                                          **{**self.head_cfg, **self.by_dataset.get(ctx.dataset.name, {})})
            scores = probabilities(head, test.features, multiclass)
            targets = test.targets.numpy()
            metrics, primary, extra = score_classification(scores, targets, test_set.label_names,
                                                           self.n_resamples, seed=unit.seed)
            extra.update(log, n_train=int(len(rows)), label_names=list(test_set.label_names),
                         deviations=DEVIATIONS, cache_hit=bool(train.hit))
            if scores.ndim == 1:  # binary: targets (N, 1) float -> (N,) class ids, as scored
                targets = targets.reshape(-1).astype(np.int64)
            yield UnitResult(unit, metrics, primary, n_test=len(targets), extra=extra, item_ids=list(test.sample_ids),
                             predictions={"scores": scores, "targets": targets})


@hookimpl
def place_bench_register(registrar):
    registrar.add("task", "cls_linear", LinearProbeTask)
