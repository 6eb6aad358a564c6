"""``seg``: semantic segmentation on the mmsegmentation engine (datasets.md section 2.5).

Protocol (suite canonical = MGCA's setup with the suite's fixes):

* **data**: a suite manifest split through :class:`~place_bench.openmmlab.seg_dataset.PlaceBenchSegDataset`
  -- the section-2.0 geometry (``pipeline``; None = the checkpoint's pretraining pipeline, 224 px
  for real models), masks from each row's ``mask_source`` (SIIM: canonical RLE, regions merged,
  split by ImageId -- pitfall 2; RSNA: box masks, negatives included; Object-CXR: rectangles,
  true ellipses and polygons). Label fractions are the manifest's nested stratified train subsets.
* **model**: mmseg ``EncoderDecoder`` on ``PlaceBenchBackbone`` (a deep copy of the evaluated
  image encoder; the evaluated model is never touched). ``head="auto"``: ``"setr"`` for ViTs
  (``SETRUPHead``, SETR-PUP: ``log2(patch)`` conv + 2x up-sampling steps on the patch grid),
  ``"upernet"`` for CNNs (``UPerHead`` on C2..C5 + an ``FCNHead`` auxiliary head on C4 with weight
  0.4, BenchX's card); ``"fcn"`` is an ``FCNHead`` on the stride-16 map. Two classes (background,
  foreground), softmax cross-entropy (``loss="ce"``) or any list of mmseg loss configs.
* **frozen** (default): no gradient reaches the encoder and it stays in eval mode, so its
  BatchNorm statistics never move (pitfall 6); after training the copy is checked bit-identical
  to the evaluated encoder. ``frozen=False`` fine-tunes it (``backbone_lr_mult`` scales its lr).
* **training**: AdamW (lr 5e-4, wd 0.05: MGCA's CLI defaults), batch 8 (``by_dataset``: RSNA 16),
  iteration-based (mmengine ``IterBasedTrainLoop``, seed = the unit's seed), optional linear
  warm-up and ``schedule="poly"``; every ``val_interval`` iterations the whole validation split is
  scored (per-image Dice) and the best state is kept; ``patience`` rounds without improvement stop.
* **metrics** (once, on the whole test split, best state; threshold 0.5 = arg-max of the 2-way
  softmax; at the pipeline's crop resolution): ``dice`` (primary) = per-image Dice averaged over
  images (an empty ground truth scores 1 for an empty prediction, else 0 -- MGCA's function,
  averaged over images instead of batches: pitfall 7), ``dice_positive`` (over ground-truth-positive
  images), ``dice_dataset`` (foreground Dice over all pixels of the split = mmseg ``IoUMetric``'s
  foreground ``Dice``); each with a seeded bootstrap interval over images (dataset Dice is
  recomputed from the resampled images' pixel counts). mmseg's two-class ``mDice`` goes to
  ``extra``. Per-image Dice and pixel counts are saved as predictions (``per_item__dice``).

Deviations from MGCA, recorded in every result (``extra.deviations``): :data:`DEVIATIONS`.
"""

from __future__ import annotations

import copy
import itertools
import math
import os
import re
import time
import warnings
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from place_bench.engine.downstream import quiet_runner_settings
from place_bench.engine.task import EvalContext, Task, Unit, UnitResult, per_dataset_overrides
from place_bench.hookspecs import hookimpl
from place_bench.plugins.tasks._scoring import with_ci

DEVIATIONS = [
    "decoder: mmsegmentation heads (SETR-PUP for ViTs, UPerNet + FCN auxiliary for CNNs) instead of MGCA's "
    "U-Net (segmentation_models_pytorch) / SETR-style decoder",
    "loss: 2-class softmax cross-entropy (BenchX) instead of MGCA's 10 x focal - log(soft Dice), unless `loss` says otherwise",
    "augmentation: the section 2.0 seeded random crop; MGCA's ShiftScaleRotate is not applied "
    "(mmseg transforms can be added with train_transforms)",
    "model selection: validation per-image Dice every val_interval iterations, patience in validation rounds "
    "(MGCA: early stopping on validation loss per epoch)",
    "label fractions: the manifest's nested stratified subsets (section 3.3); SIIM train is not re-balanced 1:1",
]

HEADS = ("auto", "setr", "upernet", "fcn")
SCHEDULES = ("constant", "poly")
#: Settings ``by_dataset`` may change for one dataset (MGCA: RSNA at batch 16).
DATASET_OVERRIDES = ("lr", "betas", "weight_decay", "batch_size", "eval_batch_size", "max_iters", "warmup_iters",
                     "schedule", "val_interval", "val_begin", "patience", "head", "head_channels", "loss",
                     "mask_from", "backbone_lr_mult", "clip_grad")
_RUN_COUNTER = itertools.count()


def _ce(weight: float = 1.0) -> dict:
    return dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=float(weight), avg_non_ignore=True)


class SegmentationTask(Task):
    """Semantic segmentation on mmseg; see the module docstring for the protocol.

    :param pipeline: section-2.0 settings (``resize_to``, ``crop``, ``mean``, ``std``); None = the
        checkpoint's pretraining pipeline (``EvalContext.pipeline``).
    :param splits: ``{"train", "val", "test"}`` split names (``val=None``: no validation, the last
        state is scored).
    :param mask_from: ``auto`` (each row's ``mask_source``), ``rle``, ``boxes`` or ``shapes``.
    :param head: ``auto`` (ViT: ``setr``; CNN: ``upernet``), ``setr``, ``upernet`` or ``fcn``;
        ``head_channels``: decoder width (None: 256 for setr / fcn, 512 for upernet);
        ``aux_head``: the FCN auxiliary head on C4 with UPerNet (weight 0.4).
    :param loss: ``"ce"`` or a list of mmseg loss configs for the decode head.
    :param frozen: freeze the encoder (eval mode, no gradients); ``backbone_lr_mult``: its lr factor
        when not frozen; ``vit_scales``: the ViT pyramid (``PlaceBenchBackbone``).
    :param lr, betas, weight_decay: AdamW; ``clip_grad``: gradient-norm clip (None: none).
    :param batch_size, eval_batch_size: training / evaluation batches.
    :param max_iters, warmup_iters, schedule: iterations, linear warm-up from 1e-3 x lr, then
        ``constant`` or ``poly`` (power 0.9 to 0 at ``max_iters``).
    :param val_interval, val_begin, patience: validation every ``val_interval`` iterations from
        ``val_begin``; rounds without improvement of the validation ``dice`` before stopping.
    :param train_transforms: mmseg transform configs applied to the transformed training arrays
        before ``PackSegInputs`` (e.g. ``RandomRotate``).
    :param norm: the decoders' norm layer (``"BN"``; ``"SyncBN"`` for multi-GPU runs).
    :param amp: ``"auto"`` (CUDA only), True or False; ``num_workers``; ``log_level``/``log_interval``.
    :param n_resamples: bootstrap resamples; ``variant``: the units' variant name.
    :param by_dataset: dataset name -> settings overriding the above (:data:`DATASET_OVERRIDES`).
    """

    name = "seg"
    needs = frozenset({"image"})
    uses_fractions = True

    def __init__(
        self,
        pipeline: dict | None = None,
        splits: dict | None = None,
        mask_from: str = "auto",
        head: str = "auto",
        head_channels: int | None = None,
        aux_head: bool = True,
        loss: str | Sequence[dict] = "ce",
        frozen: bool = True,
        backbone_lr_mult: float = 1.0,
        vit_scales: Sequence[float] = (4.0, 2.0, 1.0, 0.5),
        lr: float = 5e-4,
        betas: Sequence[float] = (0.9, 0.999),
        weight_decay: float = 0.05,
        clip_grad: float | None = None,
        batch_size: int = 8,
        eval_batch_size: int | None = None,
        max_iters: int = 2000,
        warmup_iters: int = 0,
        schedule: str = "constant",
        val_interval: int = 100,
        val_begin: int = 1,
        patience: int = 10,
        train_transforms: Sequence[dict] | None = None,
        norm: str = "BN",
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
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
        if mask_from not in ("auto", "rle", "boxes", "shapes"):
            raise ValueError(f"mask_from must be auto, rle, boxes or shapes, got {mask_from!r}")
        if not (loss == "ce" or (isinstance(loss, (list, tuple)) and all(isinstance(x, dict) for x in loss))):
            raise ValueError(f"loss must be 'ce' or a list of mmseg loss configs, got {loss!r}")
        if amp not in ("auto", True, False):
            raise ValueError(f"amp must be 'auto', True or False, got {amp!r}")
        if min(int(max_iters), int(val_interval), int(patience), int(batch_size)) < 1:
            raise ValueError("max_iters, val_interval, patience and batch_size must be >= 1")
        self.pipeline = None if pipeline is None else dict(pipeline)
        self.splits = {"train": "train", "val": "valid", "test": "test", **(splits or {})}
        self.mask_from = mask_from
        self.head, self.head_channels, self.aux_head = head, head_channels, bool(aux_head)
        self.loss = loss if loss == "ce" else [dict(x) for x in loss]
        self.frozen = bool(frozen)
        self.backbone_lr_mult = float(backbone_lr_mult)
        self.vit_scales = tuple(float(s) for s in vit_scales)
        self.optim_cfg = dict(lr=float(lr), betas=[float(b) for b in betas], weight_decay=float(weight_decay))
        self.clip_grad = None if clip_grad is None else float(clip_grad)
        self.batch_size = int(batch_size)
        self.eval_batch_size = int(eval_batch_size or batch_size)
        self.max_iters, self.warmup_iters, self.schedule = int(max_iters), int(warmup_iters), schedule
        self.val_interval, self.val_begin, self.patience = int(val_interval), int(val_begin), int(patience)
        self.train_transforms = [dict(t) for t in (train_transforms or [])]
        self.norm = str(norm)
        self.amp = amp
        self.num_workers = int(num_workers)
        self.log_level, self.log_interval = str(log_level), int(log_interval)
        self.n_resamples = int(n_resamples)
        self.variant = variant

    # -- protocol ---------------------------------------------------------------------------
    def protocol(self) -> dict[str, Any]:
        return {"pipeline": self.pipeline, "splits": self.splits, "mask_from": self.mask_from,
                "head": {"type": self.head, "channels": self.head_channels, "aux_head": self.aux_head,
                         "norm": self.norm},
                "loss": self.loss, "frozen": self.frozen, "backbone_lr_mult": self.backbone_lr_mult,
                "vit_scales": list(self.vit_scales),
                "optimizer": dict(type="AdamW", **self.optim_cfg), "clip_grad": self.clip_grad,
                "batch_size": self.batch_size,
                "schedule": {"max_iters": self.max_iters, "warmup_iters": self.warmup_iters, "decay": self.schedule},
                "validation": {"interval": self.val_interval, "begin": self.val_begin, "patience": self.patience,
                               "metric": "dice"},
                "train_transforms": self.train_transforms, "amp": self.amp,
                "metrics": "per-image Dice (primary), positive-only Dice, dataset foreground Dice; arg-max of 2 classes",
                "by_dataset": self.by_dataset}

    def for_dataset(self, name: str) -> "SegmentationTask":
        overrides = self.by_dataset.get(name)
        return self if not overrides else type(self)(**{**self._settings, **overrides})

    def units(self, fractions, seeds) -> list[Unit]:
        return [Unit(u.fraction, u.seed, self.variant) for u in super().units(fractions, seeds)]

    # -- data -------------------------------------------------------------------------------
    def _pipeline(self, ctx: EvalContext) -> dict:
        return dict(ctx.pipeline) if self.pipeline is None else dict(self.pipeline)

    def dataset(self, ctx: EvalContext, split: str, fraction: float = 1.0, train: bool = False, seed: int = 0):
        """A :class:`PlaceBenchSegDataset` of ``split``."""
        from place_bench.openmmlab.seg_dataset import PACK_META_KEYS, PlaceBenchSegDataset

        transforms = (self.train_transforms if train else []) + [dict(type="PackSegInputs", meta_keys=PACK_META_KEYS)]
        return PlaceBenchSegDataset(str(ctx.dataset.manifest), str(ctx.dataset.root), split=split, fraction=fraction,
                                    suite_pipeline=self._pipeline(ctx), train=train, seed=seed,
                                    mask_from=self.mask_from, pipeline=transforms, test_mode=not train)

    def _unit_dir(self, ctx: EvalContext, unit: Unit) -> Path:
        subject = re.sub(r"[^A-Za-z0-9]+", "", ctx.subject_id.replace("init:", "init"))[:16]
        frac = "full" if unit.fraction is None else f"{unit.fraction:g}"
        name = f"{ctx.dataset.name}-{ctx.dataset.protocol}-{subject}-f{frac}-s{unit.seed}"
        if unit.variant:
            name += f"-{unit.variant}"
        return Path(ctx.work_dir) / "seg" / re.sub(r"[^A-Za-z0-9._-]+", "_", name)

    # -- model ------------------------------------------------------------------------------
    def head_kind(self, backbone) -> str:
        return self.head if self.head != "auto" else ("setr" if backbone.is_vit else "upernet")

    def segmentor_config(self, backbone, crop: int, mean: Sequence[float], std: Sequence[float]) -> dict:
        """The mmseg ``EncoderDecoder`` config around an already built ``backbone`` (a SuiteBackbone
        with all four maps)."""
        from mmengine.config import ConfigDict

        kind = self.head_kind(backbone)
        norm_cfg = dict(type=self.norm, requires_grad=True)
        loss = [_ce()] if self.loss == "ce" else copy.deepcopy(self.loss)
        channels = backbone.out_channels
        common = dict(num_classes=2, norm_cfg=norm_cfg, align_corners=False, loss_decode=loss)
        aux = None
        if kind == "setr":
            if not backbone.is_vit or 1.0 not in backbone.vit_scales:
                raise ValueError("head='setr' needs a ViT backbone whose vit_scales include 1.0 (the patch grid)")
            index = backbone.vit_scales.index(1.0)
            stride = int(backbone.strides[index])
            steps = max(1, int(round(math.log2(stride))))
            decode = dict(type="SETRUPHead", in_channels=channels[index], in_index=index,
                          channels=self.head_channels or 256, num_convs=steps, up_scale=2, kernel_size=3,
                          dropout_ratio=0.0, norm_layer=dict(type="LN", eps=1e-6, requires_grad=True), **common)
        elif kind == "upernet":
            decode = dict(type="UPerHead", in_channels=list(channels), in_index=[0, 1, 2, 3], pool_scales=(1, 2, 3, 6),
                          channels=self.head_channels or 512, dropout_ratio=0.1, **common)
            if self.aux_head:
                aux_loss = [_ce(0.4)] if self.loss == "ce" else [dict(x, loss_weight=0.4 * float(x.get("loss_weight", 1.0)))
                                                                 for x in copy.deepcopy(self.loss)]
                aux = dict(type="FCNHead", in_channels=channels[2], in_index=2,
                           channels=max(1, (self.head_channels or 512) // 2), num_convs=1, concat_input=False,
                           dropout_ratio=0.1, **dict(common, loss_decode=aux_loss))
        else:  # fcn
            decode = dict(type="FCNHead", in_channels=channels[2], in_index=2, channels=self.head_channels or 256,
                          num_convs=2, concat_input=True, dropout_ratio=0.1, **common)
        cfg = dict(type="EncoderDecoder",
                   data_preprocessor=dict(type="SegDataPreProcessor", mean=list(mean), std=list(std), bgr_to_rgb=False,
                                          pad_val=0, seg_pad_val=255, size=(crop, crop)),
                   # the same encoder module (no copy): mmseg builds the backbone from this dict
                   backbone=dict(type="PlaceBenchBackbone", encoder=backbone.encoder, frozen=backbone.frozen,
                                 out_indices=(0, 1, 2, 3), vit_scales=list(backbone.vit_scales) or [4.0, 2.0, 1.0, 0.5]),
                   decode_head=decode, train_cfg=ConfigDict(), test_cfg=ConfigDict(mode="whole"))
        if aux is not None:
            cfg["auxiliary_head"] = aux
        return cfg

    def build_segmentor(self, ctx: EvalContext, seed: int):
        """(segmentor, head kind): a deep copy of ``ctx.model.image_encoder`` in a ``PlaceBenchBackbone``
        with the decode head(s) drawn from ``seed``."""
        from mmengine.registry import DefaultScope
        from mmengine.runner import set_random_seed
        from mmseg.registry import MODELS
        from mmseg.utils import register_all_modules

        import place_bench.openmmlab  # noqa: F401  (registers PlaceBenchBackbone)

        from place_bench.openmmlab.backbone import SuiteBackbone
        from place_bench.openmmlab.seg_dataset import preprocessor_norm

        register_all_modules(init_default_scope=False)
        pipeline = self._pipeline(ctx)
        mean, std = preprocessor_norm(pipeline)
        crop = int(pipeline.get("crop", 224))
        set_random_seed(int(seed))
        backbone = SuiteBackbone(encoder=copy.deepcopy(ctx.model.image_encoder), frozen=self.frozen,
                                 out_indices=(0, 1, 2, 3), vit_scales=self.vit_scales)
        cfg = self.segmentor_config(backbone, crop, mean, std)
        with warnings.catch_warnings(), DefaultScope.overwrite_default_scope("mmseg"):
            warnings.filterwarnings("ignore", message=".*(binary segmentation|build_loss|avg_non_ignore).*")
            segmentor = MODELS.build(cfg)
        return segmentor, self.head_kind(backbone)

    def param_schedulers(self) -> list[dict]:
        warmup = min(self.warmup_iters, self.max_iters)
        warmup = warmup if warmup > 1 else 0
        out: list[dict] = []
        if warmup:
            out.append(dict(type="LinearLR", start_factor=1e-3, end_factor=1.0, begin=0, end=warmup, by_epoch=False))
        if self.schedule == "poly" and self.max_iters > warmup:
            out.append(dict(type="PolyLR", power=0.9, eta_min=0.0, begin=warmup, end=self.max_iters, by_epoch=False))
        return out

    # -- training ---------------------------------------------------------------------------
    def train_unit(self, ctx: EvalContext, unit: Unit, test: bool = True):
        """Train a segmentor for ``unit``; return ``(segmentor, log, test_items)``: the best validation
        state loaded (eval mode), a JSON-able log and the test split's per-image counts
        (``PlaceBenchDiceMetric.last_items`` plus ``metrics``; None when ``test=False``)."""
        if self.by_dataset.get(ctx.dataset.name):
            return self.for_dataset(ctx.dataset.name).train_unit(ctx, unit, test)
        from mmengine.evaluator import Evaluator
        from mmengine.runner import Runner
        from mmseg.utils import register_all_modules

        import place_bench.openmmlab  # noqa: F401  (registers the backbone, dataset and metric)
        from place_bench.data.pairs import register_sampler
        from place_bench.openmmlab.seg_metric import PlaceBenchDiceMetric
        from place_bench.plugins.tasks.finetune import BestStateHook, _release

        register_all_modules(init_default_scope=False)
        register_sampler()
        seed = int(unit.seed)
        fraction = 1.0 if unit.fraction is None else float(unit.fraction)
        train_set = self.dataset(ctx, self.splits["train"], fraction, train=True, seed=seed)
        val_set = self.dataset(ctx, self.splits["val"]) if self.splits.get("val") else None
        test_set = self.dataset(ctx, self.splits["test"]) if test else None
        segmentor, head = self.build_segmentor(ctx, seed)

        use_amp = torch.cuda.is_available() if self.amp == "auto" else bool(self.amp)
        optim_wrapper: dict[str, Any] = dict(type="AmpOptimWrapper" if use_amp else "OptimWrapper",
                                             optimizer=dict(type="AdamW", **self.optim_cfg))
        if self.clip_grad is not None:
            optim_wrapper["clip_grad"] = dict(max_norm=self.clip_grad)
        if not self.frozen and self.backbone_lr_mult != 1.0:
            optim_wrapper["paramwise_cfg"] = dict(custom_keys={"backbone": dict(lr_mult=self.backbone_lr_mult)})

        def loader(dataset, batch: int, sampler: dict) -> dict:
            return dict(dataset=dataset, sampler=sampler, batch_size=batch, num_workers=self.num_workers,
                        persistent_workers=False, collate_fn=dict(type="pseudo_collate"))

        best = BestStateHook("val/dice", self.patience) if val_set is not None else None
        test_metric = PlaceBenchDiceMetric(prefix="test")
        work_dir = self._unit_dir(ctx, unit)
        extra_loops: dict[str, Any] = {}
        if val_set is not None:
            extra_loops.update(val_dataloader=loader(val_set, self.eval_batch_size, dict(type="DefaultSampler", shuffle=False)),
                               val_evaluator=Evaluator([PlaceBenchDiceMetric(prefix="val")]), val_cfg=dict(type="ValLoop"))
        if test_set is not None:
            extra_loops.update(test_dataloader=loader(test_set, self.eval_batch_size, dict(type="DefaultSampler", shuffle=False)),
                               test_evaluator=Evaluator([test_metric]), test_cfg=dict(type="TestLoop"))
        runner = Runner(
            model=segmentor,
            work_dir=str(work_dir),
            experiment_name=f"seg_{work_dir.name}_{os.getpid()}_{next(_RUN_COUNTER)}",
            train_dataloader=loader(train_set, self.batch_size,
                                    dict(type="EpochIndexSampler", shuffle=True, seed=seed, infinite=True)),
            train_cfg=dict(type="IterBasedTrainLoop", max_iters=self.max_iters,
                           val_interval=self.val_interval if val_set is not None else self.max_iters + 1,
                           val_begin=self.val_begin),
            optim_wrapper=optim_wrapper,
            param_scheduler=self.param_schedulers() or None,
            custom_hooks=[best] if best is not None else None,
            **quiet_runner_settings(self.log_interval, seed, self.log_level, "mmseg"),
            # kept small: mmengine formats it with yapf several times (the protocol is in the result record)
            cfg=dict(task=self.name, dataset=ctx.dataset.name,
                     unit=dict(fraction=unit.fraction, seed=seed, variant=unit.variant)),
            **extra_loops,
        )
        t0 = time.perf_counter()
        test_items = None
        try:
            runner.train()
            iters = int(runner.iter)
            train_seconds = time.perf_counter() - t0
            model = runner.model.module if hasattr(runner.model, "module") else runner.model
            if best is not None and best.best_state is not None:
                model.load_state_dict(best.best_state)
            if self.frozen:
                _check_frozen(model.backbone.encoder, ctx.model.image_encoder)
            if test_set is not None:
                metrics = runner.test()
                test_items = dict(test_metric.last_items or {}, metrics=dict(metrics or {}))
        finally:
            _release(runner)
        segmentor.eval()
        log = {"head": head, "frozen": self.frozen, "n_train": len(train_set),
               "n_val": None if val_set is None else len(val_set), "iters": iters,
               "best_iter": None if best is None else best.best_iter,
               "best_val_dice": None if best is None or best.best_state is None else best.best_value,
               "val_history": None if best is None else best.history,
               "stopped_early": bool(best is not None and best.stopped_early), "amp": use_amp,
               "train_seconds": round(train_seconds, 3), "work_dir": str(work_dir),
               "encoder_parameters": sum(p.numel() for p in segmentor.backbone.parameters()),
               "trainable_parameters": sum(p.numel() for p in segmentor.parameters() if p.requires_grad)}
        if best is not None and best.best_state is None:
            log["note"] = "validation Dice was never defined; the final state was scored"
        return segmentor, log, test_items

    def run(self, ctx: EvalContext, units: Sequence[Unit]) -> Iterator[UnitResult]:
        task = self.for_dataset(ctx.dataset.name)
        for unit in units:
            t0 = time.perf_counter()
            model, log, items = task.train_unit(ctx, unit, test=True)
            del model
            metrics, extra = score_segmentation(items, task.n_resamples, seed=unit.seed)
            extra.update(log, deviations=DEVIATIONS, seconds=round(time.perf_counter() - t0, 3),
                         settings={"lr": task.optim_cfg["lr"], "batch_size": task.batch_size,
                                   "max_iters": task.max_iters, "dataset_overrides": self.by_dataset.get(ctx.dataset.name)})
            predictions = {"per_item__dice": extra.pop("_per_item_dice"),
                           "intersection": items["intersection"], "pred_area": items["pred_area"],
                           "gt_area": items["gt_area"]}
            ctx.log(f"seg {ctx.dataset.name} fraction={unit.fraction} seed={unit.seed}: {log['iters']} iters "
                    f"({log['head']}), best val dice={log['best_val_dice']} at {log['best_iter']}, "
                    f"test dice={metrics['dice']['value']:.4f}")
            yield UnitResult(unit, metrics, "dice", n_test=len(items["item_ids"]), extra=extra,
                             item_ids=[str(i) for i in items["item_ids"]], predictions=predictions)


def _check_frozen(trained: torch.nn.Module, original: torch.nn.Module) -> None:
    """Refuse a frozen run whose encoder copy changed in any parameter or buffer."""
    a, b = trained.state_dict(), original.state_dict()
    changed = [k for k in b if k not in a or not torch.equal(a[k].detach().cpu(), b[k].detach().cpu())]
    if changed:
        raise RuntimeError(f"seg: the frozen encoder changed during training ({len(changed)} tensors, "
                           f"e.g. {', '.join(changed[:3])}); no result is recorded")


def score_segmentation(items: dict, n_resamples: int, seed: int) -> tuple[dict[str, dict], dict[str, Any]]:
    """Metrics with bootstrap intervals over images from per-image foreground pixel counts
    (``intersection``, ``pred_area``, ``gt_area``), and JSON-able extras. A metric undefined on the
    test split (``dice_positive`` without positive images, ``dice_dataset`` with no foreground
    predicted or present) is left out and named in ``extra.undefined_metrics``."""
    from place_bench.openmmlab.seg_metric import dataset_dice, mean_image_dice, per_image_dice, positive_dice

    counts = tuple(np.asarray(items[k], dtype=np.int64) for k in ("intersection", "pred_area", "gt_area"))
    metrics: dict[str, dict] = {}
    undefined: dict[str, str] = {}
    for name, fn in (("dice", mean_image_dice), ("dice_positive", positive_dice), ("dice_dataset", dataset_dice)):
        if not math.isfinite(fn(*counts)):
            undefined[name] = "no ground-truth-positive test image" if name == "dice_positive" else \
                "no foreground pixel predicted or present in the test split"
            continue
        metrics[name] = with_ci(fn, *counts, n_resamples=n_resamples, seed=seed)
    mmseg_metrics = {k: float(v) for k, v in (items.get("metrics") or {}).items()}
    check = mmseg_metrics.get("test/dice_dataset")
    if "dice_dataset" in metrics and check is not None and not math.isclose(check, metrics["dice_dataset"]["value"],
                                                                            rel_tol=1e-6, abs_tol=1e-9):
        raise RuntimeError(f"seg: dataset Dice {metrics['dice_dataset']['value']} disagrees with mmseg's IoUMetric {check}")
    gt = counts[2]
    extra = {"n_positive": int((gt > 0).sum()), "n_negative": int((gt == 0).sum()),
             "mmseg": mmseg_metrics, "undefined_metrics": undefined,
             "_per_item_dice": per_image_dice(*counts)}
    return metrics, extra


@hookimpl
def place_bench_register(registrar):
    registrar.add("task", "seg", SegmentationTask)
