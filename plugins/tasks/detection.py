"""``det``: object detection on a frozen pretrained image encoder (datasets.md section 2.6).

**Card ``yolov3``** (MGCA's, the suite canonical; records ``task="det"``, ``variant=None``): mmdet's
``YOLOV3`` detector = the checkpoint's image encoder as ``PlaceBenchBackbone``
(:class:`~place_bench.openmmlab.backbone.SuiteBackbone`: a deep copy of ``ctx.model.image_encoder``,
**frozen**: no gradient and eval mode throughout, so BatchNorm statistics never move --
section 5, pitfall 6) on C3/C4/C5 (``out_indices=(1, 2, 3)``; strides 8/16/32, 28²/14²/7² at 224)
+ ``YOLOV3Neck`` (conv-BN-LeakyReLU blocks, two nearest up-samplings) + ``YOLOV3Head`` with 3
anchors per scale = the COCO YOLOv3 anchors scaled by ``size / 416`` (224/416 at MGCA's 224).
Input: the whole image squashed to ``size x size`` (bilinear), normalized 0.5 / 0.5, no
augmentation (:class:`~place_bench.openmmlab.det_dataset.PlaceBenchDetDataset`); negatives are
trained on with no objects. AdamW lr 5e-4, weight decay 1e-6, batch 16 (MGCA's 1 % setting --
lr 2e-4 RSNA / 2.5e-4 Object-CXR, batch 8 -- is the config's ``by_dataset[...]["by_fraction"]``).
Inference: objectness threshold 0.5 (``conf_thr``), NMS IoU 0.5, at most 100 detections.

**Card ``faster_rcnn``** (``head="faster_rcnn"``, recorded as ``variant="faster_rcnn"``): mmdet's
``FasterRCNN`` = the same frozen backbone on C2..C5 + ``FPN`` (256 channels, 5 levels) + RPN +
``StandardRoIHead`` (RoIAlign 7x7, two shared FCs), mmdet's standard Faster R-CNN training and
test settings (score threshold 0.05, NMS 0.5, 100 per image); SGD lr 0.02, momentum 0.9, weight
decay 1e-4 with a linear warm-up (mmdet's 1x schedule without the step decay) unless set.

**Training** (both cards): the real mmdet/mmengine stack -- the detector is built from a config
assembled here in code through mmdet's ``MODELS`` registry, the train / val / test data through
``DATASETS`` (``PlaceBenchDetDataset``, packed by mmdet's ``PackDetInputs``) and scored through
``METRICS`` (``PlaceBenchDetMetric``); an mmengine ``Runner`` (``IterBasedTrainLoop``, seed = the
unit's seed, ``default_scope="mmdet"``) trains in ``<ctx.work_dir>/det/<unit>``. ``max_iters``
defaults to ``max_epochs`` (50, MGCA) epochs of the unit's train subset; every ``val_interval``
iterations (default: one epoch) the whole validation split is scored (``map``) and the best state
is kept; ``patience`` rounds without improvement stop training (MGCA: 10 epochs). The best state
is scored **once** on the whole test split by the Runner's test loop.

**Metrics** (:mod:`place_bench.openmmlab.det_metric`): ``map`` (primary) = COCO AP averaged over
IoU 0.40:0.05:0.75 over every test image with ground truth (images without surviving predictions
are misses), ``ap50``, the all-images variants ``map_all`` / ``ap50_all`` (false positives on
negatives count) and MGCA's inflated ``map_mgca``; each with a seeded bootstrap interval over
images (``n_resamples``, 200 by default). Per-image ground truth and detections (native pixels)
are returned as ``predictions`` (axis 0 = test image, padded; see
:func:`~place_bench.openmmlab.det_metric.detections_to_arrays`).

Deviations from MGCA are recorded in ``extra.deviations`` (:data:`DEVIATIONS`).
"""

from __future__ import annotations

import copy
import itertools
import math
import os
import re
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch

from place_bench.engine.downstream import quiet_runner_settings
from place_bench.engine.task import EvalContext, Task, Unit, UnitResult
from place_bench.hookspecs import hookimpl

HEADS = ("yolov3", "faster_rcnn")
#: The COCO YOLOv3 anchors (w, h) at 416 px, coarsest scale first (mmdet's / Darknet's order).
COCO_YOLOV3_ANCHORS = (((116, 90), (156, 198), (373, 326)),
                       ((30, 61), (62, 45), (59, 119)),
                       ((10, 13), (16, 30), (33, 23)))
DEVIATIONS = [
    "mmdet's YOLOV3Neck/YOLOV3Head (loss: mmdet's YOLOv3 losses and GridAssigner) instead of MGCA's own YOLO head "
    "and loss; same structure (3 scales, 3 anchors each, COCO anchors scaled by size/416)",
    "metric: every test image with ground truth is scored (MGCA skips images without surviving predictions, "
    "section 5 pitfall 5; its number is reported as map_mgca)",
    "frozen encoder kept in eval mode (MGCA lets the frozen ResNet's BatchNorm statistics drift, pitfall 6)",
    "Object-CXR polygons as tight bounding boxes (MGCA inflates them, pitfall 11)",
    "validation every val_interval iterations (default one epoch), early-stopping patience in validation rounds",
    "label fractions are the manifest's nested stratified subsets (section 3.3), not numpy.random.choice",
]
#: Settings ``by_dataset`` / ``by_fraction`` may change for one dataset / label fraction.
UNIT_OVERRIDES = ("lr", "weight_decay", "optimizer", "batch_size", "eval_batch_size", "max_iters", "max_epochs",
                  "val_interval", "val_begin", "patience", "warmup_iters", "conf_thr", "nms_iou", "score_thr",
                  "clip_grad")
_RUN_COUNTER = itertools.count()


def state_fingerprint(module: torch.nn.Module) -> str:
    """SHA-256 over a module's state dict (names, dtypes, shapes and bytes of every parameter and
    buffer, BatchNorm running statistics included): proof that a frozen encoder did not move."""
    import hashlib

    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _fraction_key(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"by_fraction keys must be fractions such as 0.01 or '0.01', got {value!r}") from None


class DetectionTask(Task):
    """Object detection with a frozen encoder; see the module docstring for the protocol.

    :param head: ``"yolov3"`` (MGCA card) or ``"faster_rcnn"``.
    :param size: input side after squashing; None = the checkpoint pipeline's ``crop`` (224 for
        real models), else 224.
    :param splits: ``{"train", "val", "test"}`` split names (default train / valid / test); ``val``
        None trains to ``max_iters`` without validation.
    :param include_negatives: train on images without boxes (MGCA: yes); test always has them.
    :param frozen: freeze the encoder (no grad, eval mode); False fine-tunes it.
    :param lr, weight_decay: the optimizer's (None: the card's, AdamW 5e-4 / 1e-6 for yolov3, SGD
        0.02 / 1e-4 for faster_rcnn); ``optimizer``: a full mmengine optimizer config instead.
    :param batch_size, eval_batch_size: training / evaluation batch.
    :param max_iters: training iterations; None = ``max_epochs`` epochs of the train subset.
    :param val_interval: iterations between validation rounds (None: one epoch); ``val_begin``;
        ``patience``: rounds without a better val ``map`` before stopping (None: never stop early).
    :param warmup_iters: linear warm-up from lr / 1000 (None: 0 for yolov3, 500 for faster_rcnn).
    :param clip_grad: gradient-norm clip (None: none).
    :param conf_thr, nms_iou, score_thr, max_per_img: inference (yolov3: objectness threshold,
        NMS IoU, class-score threshold; faster_rcnn: score threshold = ``score_thr``, default 0.05).
    :param neck_channels, head_channels: YOLOv3 widths (mmdet defaults (512, 256, 128) and
        (1024, 512, 256)); ``anchors``: YOLOv3 anchors at ``size`` (default the scaled COCO ones).
    :param vit_scales: the ViT simple pyramid's factors (``PlaceBenchBackbone``).
    :param iou_thresholds, n_resamples: the metric's thresholds and bootstrap resamples.
    :param amp: ``"auto"`` (CUDA only), True or False; ``num_workers``, ``log_level``, ``log_interval``.
    :param variant: the units' variant (default None for yolov3, ``"faster_rcnn"`` otherwise).
    :param by_dataset: dataset name -> overrides (:data:`UNIT_OVERRIDES`, plus ``by_fraction``);
        ``by_fraction``: fraction -> overrides (MGCA's 1 % learning rates).
    """

    name = "det"
    needs = frozenset({"image"})
    uses_fractions = True

    def __init__(
        self,
        head: str = "yolov3",
        size: int | None = None,
        splits: dict | None = None,
        include_negatives: bool = True,
        frozen: bool = True,
        lr: float | None = None,
        weight_decay: float | None = None,
        optimizer: dict | None = None,
        batch_size: int = 16,
        eval_batch_size: int | None = None,
        max_iters: int | None = None,
        max_epochs: float = 50,
        val_interval: int | None = None,
        val_begin: int = 1,
        patience: int | None = 10,
        warmup_iters: int | None = None,
        clip_grad: float | None = None,
        conf_thr: float = 0.5,
        nms_iou: float = 0.5,
        score_thr: float | None = None,
        max_per_img: int = 100,
        neck_channels: Sequence[int] = (512, 256, 128),
        head_channels: Sequence[int] = (1024, 512, 256),
        anchors: Sequence | None = None,
        vit_scales: Sequence[float] = (4.0, 2.0, 1.0, 0.5),
        iou_thresholds: Sequence[float] | None = None,
        n_resamples: int = 200,
        amp: bool | str = "auto",
        num_workers: int = 4,
        log_level: str = "WARNING",
        log_interval: int = 50,
        variant: str | None = None,
        by_dataset: dict | None = None,
        by_fraction: dict | None = None,
    ):
        from place_bench.openmmlab.det_metric import IOU_THRESHOLDS

        settings = {k: v for k, v in locals().items() if k not in ("self", "__class__", "IOU_THRESHOLDS")}
        if head not in HEADS:
            raise ValueError(f"det: head must be one of {HEADS}, got {head!r}")
        if amp not in ("auto", True, False):
            raise ValueError(f"det: amp must be 'auto', True or False, got {amp!r}")
        if int(batch_size) < 1 or (max_iters is not None and int(max_iters) < 1) or float(max_epochs) <= 0:
            raise ValueError("det: batch_size and max_iters must be >= 1, max_epochs > 0")
        self.by_dataset = {str(k): dict(v) for k, v in (by_dataset or {}).items()}
        self.by_fraction = {_fraction_key(k): dict(v) for k, v in (by_fraction or {}).items()}
        nested = [(f"by_dataset[{d!r}].by_fraction[{k!r}]", dict(v)) for d, o in self.by_dataset.items()
                  for k, v in (o.get("by_fraction") or {}).items() if _fraction_key(k) is not None]
        for where, overrides in [*((f"by_dataset[{k!r}]", v) for k, v in self.by_dataset.items()),
                                 *((f"by_fraction[{k!r}]", v) for k, v in self.by_fraction.items()), *nested]:
            allowed = set(UNIT_OVERRIDES) | ({"by_fraction"} if where.startswith("by_dataset") and "].by" not in where else set())
            unknown = sorted(set(overrides) - allowed)
            if unknown:
                raise ValueError(f"det: {where}: {unknown} cannot be set there; allowed: {sorted(UNIT_OVERRIDES)}")
        self._settings = settings
        self.head = head
        self.size = None if size is None else int(size)
        self.splits = {"train": "train", "val": "valid", "test": "test", **(splits or {})}
        self.include_negatives = bool(include_negatives)
        self.frozen = bool(frozen)
        yolo = head == "yolov3"
        self.optimizer = dict(optimizer) if optimizer else (
            dict(type="AdamW", lr=5e-4 if lr is None else float(lr), weight_decay=1e-6 if weight_decay is None else float(weight_decay))
            if yolo else
            dict(type="SGD", lr=0.02 if lr is None else float(lr), momentum=0.9,
                 weight_decay=1e-4 if weight_decay is None else float(weight_decay)))
        self.batch_size = int(batch_size)
        self.eval_batch_size = int(eval_batch_size or batch_size)
        self.max_iters = None if max_iters is None else int(max_iters)
        self.max_epochs = float(max_epochs)
        self.val_interval = None if val_interval is None else int(val_interval)
        self.val_begin = int(val_begin)
        self.patience = None if patience is None else int(patience)
        self.warmup_iters = (0 if yolo else 500) if warmup_iters is None else int(warmup_iters)
        self.clip_grad = None if clip_grad is None else float(clip_grad)
        self.conf_thr, self.nms_iou = float(conf_thr), float(nms_iou)
        self.score_thr = (0.0 if yolo else 0.05) if score_thr is None else float(score_thr)
        self.max_per_img = int(max_per_img)
        self.neck_channels = [int(c) for c in neck_channels]
        self.head_channels = [int(c) for c in head_channels]
        if len(self.neck_channels) != 3 or len(self.head_channels) != 3:
            raise ValueError("det: neck_channels and head_channels need 3 widths (coarsest scale first)")
        self.anchors = None if anchors is None else [[tuple(float(v) for v in a) for a in level] for level in anchors]
        self.vit_scales = tuple(float(s) for s in vit_scales)
        self.iou_thresholds = tuple(float(t) for t in (iou_thresholds or IOU_THRESHOLDS))
        self.n_resamples = int(n_resamples)
        self.amp = amp
        self.num_workers = int(num_workers)
        self.log_level, self.log_interval = str(log_level), int(log_interval)
        self.variant = variant if variant is not None else (None if yolo else head)

    # -- protocol and units -----------------------------------------------------------------
    def protocol(self) -> dict[str, Any]:
        return {"card": "mgca_yolov3" if self.head == "yolov3" else "faster_rcnn_fpn", "head": self.head,
                "size": self.size or "checkpoint pipeline crop", "input": "whole image squashed (bilinear), 0.5/0.5, "
                "no augmentation", "splits": self.splits, "include_negatives": self.include_negatives,
                "encoder": "frozen, eval mode (no BatchNorm drift)" if self.frozen else "fine-tuned",
                "optimizer": self.optimizer, "batch_size": self.batch_size,
                "schedule": {"max_iters": self.max_iters, "max_epochs": self.max_epochs,
                             "warmup_iters": self.warmup_iters, "clip_grad": self.clip_grad},
                "validation": {"interval": self.val_interval or "1 epoch", "begin": self.val_begin,
                               "patience": self.patience, "metric": "map"},
                "inference": {"conf_thr": self.conf_thr if self.head == "yolov3" else None, "nms_iou": self.nms_iou,
                              "score_thr": self.score_thr, "max_per_img": self.max_per_img},
                "yolov3": {"neck_channels": self.neck_channels, "head_channels": self.head_channels,
                           "anchors": self.anchors or "COCO YOLOv3 anchors x size/416"} if self.head == "yolov3" else None,
                "metric": {"primary": "map", "iou_thresholds": list(self.iou_thresholds),
                           "images": "every test image with ground truth", "n_resamples": self.n_resamples},
                "by_dataset": self.by_dataset, "by_fraction": {str(k): v for k, v in self.by_fraction.items()}}

    def units(self, fractions, seeds) -> list[Unit]:
        return [Unit(u.fraction, u.seed, self.variant) for u in super().units(fractions, seeds)]

    def for_unit(self, dataset: str, fraction: float | None) -> "DetectionTask":
        """This task with ``by_dataset[dataset]``, then the ``by_fraction`` entry of the unit's
        fraction (the dataset's own ``by_fraction`` first, else the task's), applied."""
        overrides = dict(self.by_dataset.get(dataset) or {})
        by_fraction = dict(self.by_fraction)
        by_fraction.update({_fraction_key(k): dict(v) for k, v in (overrides.pop("by_fraction", None) or {}).items()})
        frac = 1.0 if fraction is None else float(fraction)
        for key, values in by_fraction.items():
            if math.isclose(key, frac, rel_tol=1e-9, abs_tol=1e-12):
                overrides.update(values)
        if not overrides:
            return self
        settings = {**self._settings, **overrides, "by_dataset": None, "by_fraction": None}
        if self._settings.get("optimizer") and "optimizer" not in overrides:  # an explicit optimizer takes lr / wd
            settings["optimizer"] = dict(self._settings["optimizer"],
                                         **{k: overrides[k] for k in ("lr", "weight_decay") if k in overrides})
        return type(self)(**settings)

    # -- model ------------------------------------------------------------------------------
    def _size(self, ctx: EvalContext) -> int:
        return self.size or int((ctx.pipeline or {}).get("crop") or 224)

    def _norm(self, ctx: EvalContext) -> dict:
        pipe = ctx.pipeline or {}
        return {k: tuple(pipe[k]) for k in ("mean", "std") if pipe.get(k) is not None}

    def yolo_anchors(self, size: int) -> list[list[tuple[float, float]]]:
        """The YOLOv3 anchors (w, h) at ``size``, coarsest scale first."""
        if self.anchors is not None:
            return [list(level) for level in self.anchors]
        s = size / 416.0
        return [[(round(w * s, 4), round(h * s, 4)) for w, h in level] for level in COCO_YOLOV3_ANCHORS]

    def model_config(self, backbone: dict, channels: Sequence[int], strides: Sequence[float], num_classes: int,
                     size: int) -> dict:
        """The mmdet detector config of the card. ``backbone``: the ``PlaceBenchBackbone`` config;
        ``channels`` / ``strides``: of the backbone's outputs, finest first."""
        preprocessor = dict(type="DetDataPreprocessor", mean=None, std=None, bgr_to_rgb=False,
                            pad_size_divisor=int(max(strides)))
        if self.head == "yolov3":
            top_down = [int(s) for s in reversed(strides)]
            return dict(
                type="YOLOV3", data_preprocessor=preprocessor, backbone=backbone,
                neck=dict(type="YOLOV3Neck", num_scales=3, in_channels=list(reversed([int(c) for c in channels])),
                          out_channels=self.neck_channels),
                bbox_head=dict(
                    type="YOLOV3Head", num_classes=num_classes, in_channels=self.neck_channels,
                    out_channels=self.head_channels,
                    anchor_generator=dict(type="YOLOAnchorGenerator", base_sizes=self.yolo_anchors(size), strides=top_down),
                    bbox_coder=dict(type="YOLOBBoxCoder"), featmap_strides=top_down,
                    loss_cls=dict(type="CrossEntropyLoss", use_sigmoid=True, loss_weight=1.0, reduction="sum"),
                    loss_conf=dict(type="CrossEntropyLoss", use_sigmoid=True, loss_weight=1.0, reduction="sum"),
                    loss_xy=dict(type="CrossEntropyLoss", use_sigmoid=True, loss_weight=2.0, reduction="sum"),
                    loss_wh=dict(type="MSELoss", loss_weight=2.0, reduction="sum")),
                train_cfg=dict(assigner=dict(type="GridAssigner", pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0)),
                test_cfg=dict(nms_pre=1000, min_bbox_size=0, score_thr=self.score_thr, conf_thr=self.conf_thr,
                              nms=dict(type="nms", iou_threshold=self.nms_iou), max_per_img=self.max_per_img))
        fpn_strides = [int(s) for s in strides]
        return dict(
            type="FasterRCNN", data_preprocessor=preprocessor, backbone=backbone,
            neck=dict(type="FPN", in_channels=[int(c) for c in channels], out_channels=256, num_outs=len(channels) + 1),
            rpn_head=dict(
                type="RPNHead", in_channels=256, feat_channels=256,
                anchor_generator=dict(type="AnchorGenerator", scales=[8], ratios=[0.5, 1.0, 2.0],
                                      strides=fpn_strides + [2 * fpn_strides[-1]]),
                bbox_coder=dict(type="DeltaXYWHBBoxCoder", target_means=[0.0] * 4, target_stds=[1.0] * 4),
                loss_cls=dict(type="CrossEntropyLoss", use_sigmoid=True, loss_weight=1.0),
                loss_bbox=dict(type="L1Loss", loss_weight=1.0)),
            roi_head=dict(
                type="StandardRoIHead",
                bbox_roi_extractor=dict(type="SingleRoIExtractor",
                                        roi_layer=dict(type="RoIAlign", output_size=7, sampling_ratio=0),
                                        out_channels=256, featmap_strides=fpn_strides),
                bbox_head=dict(type="Shared2FCBBoxHead", in_channels=256, fc_out_channels=1024, roi_feat_size=7,
                               num_classes=num_classes,
                               bbox_coder=dict(type="DeltaXYWHBBoxCoder", target_means=[0.0] * 4,
                                               target_stds=[0.1, 0.1, 0.2, 0.2]),
                               reg_class_agnostic=False,
                               loss_cls=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0),
                               loss_bbox=dict(type="L1Loss", loss_weight=1.0))),
            train_cfg=dict(
                rpn=dict(assigner=dict(type="MaxIoUAssigner", pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.3,
                                       match_low_quality=True, ignore_iof_thr=-1),
                         sampler=dict(type="RandomSampler", num=256, pos_fraction=0.5, neg_pos_ub=-1,
                                      add_gt_as_proposals=False),
                         allowed_border=-1, pos_weight=-1, debug=False),
                rpn_proposal=dict(nms_pre=2000, max_per_img=1000, nms=dict(type="nms", iou_threshold=0.7), min_bbox_size=0),
                rcnn=dict(assigner=dict(type="MaxIoUAssigner", pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.5,
                                        match_low_quality=False, ignore_iof_thr=-1),
                          sampler=dict(type="RandomSampler", num=512, pos_fraction=0.25, neg_pos_ub=-1,
                                       add_gt_as_proposals=True),
                          pos_weight=-1, debug=False)),
            test_cfg=dict(
                rpn=dict(nms_pre=1000, max_per_img=1000, nms=dict(type="nms", iou_threshold=0.7), min_bbox_size=0),
                rcnn=dict(score_thr=self.score_thr, nms=dict(type="nms", iou_threshold=self.nms_iou),
                          max_per_img=self.max_per_img)))

    def build_detector(self, encoder: torch.nn.Module, num_classes: int, size: int):
        """``(detector, config)``: the card's mmdet detector on ``encoder`` (used as is: pass a copy)."""
        from mmdet.registry import MODELS
        from mmengine.config import ConfigDict
        from mmengine.registry import DefaultScope

        from mmdet.utils import register_all_modules

        from place_bench.openmmlab.backbone import BACKBONE_NAME, SuiteBackbone

        register_all_modules(init_default_scope=False)
        out_indices = (1, 2, 3) if self.head == "yolov3" else (0, 1, 2, 3)
        probe = SuiteBackbone(encoder=encoder, frozen=self.frozen, out_indices=out_indices, vit_scales=self.vit_scales)
        backbone = dict(type=BACKBONE_NAME, encoder=encoder, frozen=self.frozen, out_indices=out_indices,
                        vit_scales=self.vit_scales)
        cfg = self.model_config(backbone, probe.out_channels, probe.strides, num_classes, size)
        with DefaultScope.overwrite_default_scope("mmdet"):
            detector = MODELS.build(ConfigDict(cfg))  # mmdet heads read train_cfg / test_cfg by attribute
        if detector.backbone.encoder is not encoder:
            raise RuntimeError("det: the detector's backbone does not hold the given encoder")
        shown = dict(cfg, backbone=dict(backbone, encoder=type(encoder).__name__))
        return detector, shown

    # -- data -------------------------------------------------------------------------------
    def _dataset_cfg(self, ctx: EvalContext, split: str, fraction: float = 1.0, negatives: bool = True,
                     test_mode: bool = False, classes: Sequence[str] | None = None, seed: int = 0) -> dict:
        return dict(type="PlaceBenchDetDataset", manifest=str(ctx.dataset.manifest), root=str(ctx.dataset.root),
                    split=split, fraction=float(fraction), size=self._size(ctx), include_negatives=negatives,
                    classes=None if classes is None else list(classes), test_mode=test_mode, seed=int(seed),
                    **self._norm(ctx))

    def _unit_dir(self, ctx: EvalContext, unit: Unit) -> Path:
        subject = re.sub(r"[^A-Za-z0-9]+", "", ctx.subject_id.replace("init:", "init"))[:16]
        frac = "full" if unit.fraction is None else f"{unit.fraction:g}"
        name = f"{ctx.dataset.name}-{ctx.dataset.protocol}-{subject}-{self.head}-f{frac}-s{unit.seed}"
        return Path(ctx.work_dir) / "det" / re.sub(r"[^A-Za-z0-9._-]+", "_", name)

    # -- one unit ---------------------------------------------------------------------------
    def run_unit(self, ctx: EvalContext, unit: Unit) -> UnitResult:
        """Train the card's detector for ``unit`` and score the test split (see the module docstring)."""
        from mmdet.registry import DATASETS
        from mmdet.utils import register_all_modules
        from mmengine.evaluator import Evaluator
        from mmengine.registry import DefaultScope
        from mmengine.runner import Runner, set_random_seed

        import place_bench.openmmlab  # noqa: F401  (registers the backbone, dataset and metric)
        from place_bench.openmmlab.det_metric import PlaceBenchDetMetric, detections_to_arrays, score_detections
        from place_bench.plugins.tasks.finetune import BestStateHook, _release

        register_all_modules(init_default_scope=False)
        t0 = time.perf_counter()
        seed = int(unit.seed)
        fraction = 1.0 if unit.fraction is None else float(unit.fraction)
        size = self._size(ctx)
        with DefaultScope.overwrite_default_scope("mmdet"):
            train_set = DATASETS.build(self._dataset_cfg(ctx, self.splits["train"], fraction, self.include_negatives,
                                                         seed=seed))
        classes = train_set.classes
        n_train = len(train_set)
        epoch_iters = max(1, math.ceil(n_train / self.batch_size))
        max_iters = self.max_iters or max(1, math.ceil(self.max_epochs * epoch_iters))
        val_interval = self.val_interval or epoch_iters
        has_val = self.splits.get("val") is not None

        set_random_seed(seed)
        encoder = copy.deepcopy(ctx.model.image_encoder).cpu()
        encoder_before = state_fingerprint(encoder)
        detector, model_cfg = self.build_detector(encoder, len(classes), size)

        use_amp = torch.cuda.is_available() if self.amp == "auto" else bool(self.amp)
        optim_wrapper: dict[str, Any] = dict(type="AmpOptimWrapper" if use_amp else "OptimWrapper",
                                             optimizer=dict(self.optimizer))
        if self.clip_grad is not None:
            optim_wrapper["clip_grad"] = dict(max_norm=self.clip_grad, norm_type=2)
        warmup = min(self.warmup_iters, max_iters)
        schedulers = ([dict(type="LinearLR", start_factor=1e-3, by_epoch=False, begin=0, end=warmup)]
                      if warmup > 1 else None)

        loader = dict(batch_size=self.eval_batch_size, num_workers=self.num_workers, persistent_workers=False,
                      sampler=dict(type="DefaultSampler", shuffle=False))
        val_metric = PlaceBenchDetMetric(len(classes), self.iou_thresholds, self.max_per_img, prefix="val")
        test_metric = PlaceBenchDetMetric(len(classes), self.iou_thresholds, self.max_per_img, prefix="test")
        best = BestStateHook("val/map", self.patience if self.patience is not None else 1 << 30)
        work_dir = self._unit_dir(ctx, unit)
        val_kwargs: dict[str, Any] = {}
        if has_val:
            val_kwargs = dict(
                val_dataloader=dict(dataset=self._dataset_cfg(ctx, self.splits["val"], classes=classes, test_mode=True),
                                    **loader),
                val_evaluator=Evaluator([val_metric]), val_cfg=dict(type="ValLoop"))
        runner = Runner(
            model=detector,
            work_dir=str(work_dir),
            experiment_name=f"det_{work_dir.name}_{os.getpid()}_{next(_RUN_COUNTER)}",
            train_dataloader=dict(dataset=train_set,
                                  sampler=dict(type="InfiniteSampler", shuffle=True, seed=seed),
                                  batch_size=self.batch_size, num_workers=self.num_workers, persistent_workers=False),
            train_cfg=dict(type="IterBasedTrainLoop", max_iters=max_iters,
                           val_interval=val_interval if has_val else max_iters + 1, val_begin=self.val_begin),
            test_dataloader=dict(dataset=self._dataset_cfg(ctx, self.splits["test"], classes=classes, test_mode=True),
                                 **loader),
            test_evaluator=Evaluator([test_metric]),
            test_cfg=dict(type="TestLoop"),
            optim_wrapper=optim_wrapper,
            param_scheduler=schedulers,
            custom_hooks=[best] if has_val else None,
            **quiet_runner_settings(self.log_interval, seed, self.log_level, "mmdet"),
            cfg=dict(task=self.name, dataset=ctx.dataset.name, unit=dict(fraction=unit.fraction, seed=seed,
                                                                         variant=unit.variant),
                     protocol=self.protocol()),
            **val_kwargs,
        )
        try:
            t_train = time.perf_counter()
            runner.train()
            iters = int(runner.iter)
            train_seconds = time.perf_counter() - t_train
            model = runner.model.module if hasattr(runner.model, "module") else runner.model
            if best.best_state is not None:
                model.load_state_dict(best.best_state)
            runner.test()
        finally:
            _release(runner)
        images = test_metric.last_images
        test_ids = runner.test_dataloader.dataset.sample_ids
        if images is None or images.ids != list(test_ids):
            raise RuntimeError("det: the test loop did not score every test image exactly once")
        metrics, primary, extra = score_detections(images, self.n_resamples, seed=seed,
                                                   iou_thresholds=self.iou_thresholds, max_dets=self.max_per_img,
                                                   scorer=test_metric.last_scorer)
        predictions = detections_to_arrays(images)
        encoder_after = state_fingerprint(model.backbone.encoder)
        frozen_modes = {"encoder_training_mode": bool(model.backbone.encoder.training),
                        "encoder_requires_grad": any(p.requires_grad for p in model.backbone.encoder.parameters()),
                        "encoder_sha256_before": encoder_before, "encoder_sha256_after": encoder_after,
                        "encoder_unchanged": encoder_before == encoder_after}
        if self.frozen and encoder_before != encoder_after:
            raise RuntimeError("det: the frozen encoder's weights or buffers changed during training")
        extra.update(
            head=self.head, classes=list(classes), size=size, n_train=n_train,
            n_val=len(runner.val_dataloader.dataset) if has_val else 0, iters=iters, max_iters=max_iters,
            epoch_iters=epoch_iters, val_interval=val_interval if has_val else None,
            best_iter=best.best_iter, best_val_map=None if best.best_state is None else best.best_value,
            val_history=best.history, stopped_early=best.stopped_early, amp=use_amp,
            train_seconds=round(train_seconds, 3), seconds=round(time.perf_counter() - t0, 3), work_dir=str(work_dir),
            frozen=self.frozen, encoder_bn="eval mode (frozen)" if self.frozen else "trained", **frozen_modes,
            backbone_load=getattr(model.backbone, "load_report", None),
            model={"type": model_cfg["type"], "anchors": model_cfg.get("bbox_head", {}).get("anchor_generator", {}).get("base_sizes"),
                   "out_channels": getattr(model.backbone, "out_channels", None),
                   "strides": getattr(model.backbone, "strides", None)},
            settings={"optimizer": self.optimizer, "batch_size": self.batch_size, "max_iters": max_iters,
                      "conf_thr": self.conf_thr, "nms_iou": self.nms_iou},
            deviations=DEVIATIONS, coordinates="native pixels xyxy (predictions rescaled by 1/scale_factor)")
        if has_val and best.best_state is None:
            extra["note"] = "val map was never defined (no validation boxes); the final state was scored"
        return UnitResult(unit, metrics, primary, n_test=len(images), extra=extra, item_ids=list(images.ids),
                          predictions=predictions)

    def run(self, ctx: EvalContext, units: Sequence[Unit]) -> Iterator[UnitResult]:
        for unit in units:
            task = self.for_unit(ctx.dataset.name, unit.fraction)
            result = task.run_unit(ctx, unit)
            m = result.metrics["map"]
            ctx.log(f"det[{self.head}] {ctx.dataset.name} fraction={unit.fraction} seed={unit.seed}: "
                    f"{result.extra['iters']} iters, best val map={result.extra['best_val_map']} at "
                    f"{result.extra['best_iter']}, test map={m['value']:.4f} ap50="
                    f"{result.metrics['ap50']['value']:.4f} ({result.extra['seconds']} s)")
            yield result


@hookimpl
def place_bench_register(registrar):
    registrar.add("task", "det", DetectionTask)
