"""Suite manifests as an mmsegmentation dataset (``PlaceBenchSegDataset``).

Images and masks come from the suite's :class:`~place_bench.data.loaders.SegmentationDataset`:
the same section-2.0 geometry as every other task (letterbox, crop -- random on train, centre on
eval; nothing flipped) with the native mask sent through the image's own geometry by
nearest-neighbour sampling. The mmseg dataset hands them to its ``pipeline`` already transformed:
``img`` float32 ``(S, S, 3)`` in **0-255** (the normalization is left to mmseg's
``SegDataPreProcessor``: :func:`preprocessor_norm` gives the pipeline's mean / std x 255, i.e.
127.5 / 127.5 for the suite's 0.5 / 0.5), ``gt_seg_map`` uint8 ``(S, S)`` in {0, 1}, plus
``sample_id``. The default ``pipeline`` is ``PackSegInputs`` keeping ``sample_id`` in the
metainfo; mmseg transforms that work on arrays may be put before it.

Mask sources (``mask_from="auto"`` follows each row's ``mask_source``): ``rle`` -- the canonical
RLE (SIIM, section 3.4); ``boxes`` -- the row's boxes, negatives included (RSNA); ``shapes`` --
Object-CXR's objects rasterized at native size (:func:`shapes_to_mask`: rectangles as boxes,
ellipses as true ellipses inside their bounding box, polygons as polygons; pitfall 10).
A pixel belongs to a shape when its centre does.

Keys may be ``(index, epoch)`` (:class:`~place_bench.data.pairs.EpochIndexSampler`), so training
crops differ between epochs and stay reproducible.
"""

from __future__ import annotations

import math
import os
from typing import Any, Mapping, Sequence

import numpy as np
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS, TRANSFORMS

from place_bench.data.images import MGCA_MEAN, MGCA_STD
from place_bench.data.loaders import SegmentationDataset, boxes_to_mask

__all__ = ["PACK_META_KEYS", "PlaceBenchSegDataset", "ShapesSegmentationDataset", "ellipse_to_mask", "raw_pipeline",
           "polygon_to_mask", "preprocessor_norm", "shapes_to_mask"]

#: PackSegInputs' default meta keys plus the suite's ``sample_id``.
PACK_META_KEYS = ("img_path", "seg_map_path", "ori_shape", "img_shape", "pad_shape", "scale_factor", "flip",
                  "flip_direction", "reduce_zero_label", "sample_id")
MASK_FROM = ("auto", "rle", "boxes", "shapes")
PIXEL_RANGE = 255.0


# --------------------------------------------------------------------------------------------
# Object-CXR shapes
# --------------------------------------------------------------------------------------------


def _centres(lo: float, hi: float, size: int) -> tuple[int, int]:
    """Index range of pixels whose centres may fall in ``[lo, hi]``."""
    return max(0, int(math.floor(lo - 0.5))), min(size, int(math.ceil(hi + 0.5)))


def ellipse_to_mask(box: Mapping[str, float], height: int, width: int) -> np.ndarray:
    """``bool`` mask of the ellipse inscribed in ``box`` (``x1 y1 x2 y2``): pixel centres with
    ``((x - cx) / a)^2 + ((y - cy) / b)^2 <= 1``."""
    mask = np.zeros((height, width), dtype=bool)
    a, b = (box["x2"] - box["x1"]) / 2.0, (box["y2"] - box["y1"]) / 2.0
    if a <= 0 or b <= 0:
        return mask
    cx, cy = (box["x1"] + box["x2"]) / 2.0, (box["y1"] + box["y2"]) / 2.0
    c0, c1 = _centres(box["x1"], box["x2"], width)
    r0, r1 = _centres(box["y1"], box["y2"], height)
    if c1 <= c0 or r1 <= r0:
        return mask
    x = (np.arange(c0, c1) + 0.5 - cx) / a
    y = (np.arange(r0, r1) + 0.5 - cy) / b
    mask[r0:r1, c0:c1] = (y[:, None] ** 2 + x[None, :] ** 2) <= 1.0
    return mask


def polygon_to_mask(points: Sequence[float], height: int, width: int) -> np.ndarray:
    """``bool`` mask of a polygon given as flat ``x1 y1 x2 y2 ...`` (even-odd rule on pixel centres)."""
    mask = np.zeros((height, width), dtype=bool)
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) < 3:
        return mask
    c0, c1 = _centres(pts[:, 0].min(), pts[:, 0].max(), width)
    r0, r1 = _centres(pts[:, 1].min(), pts[:, 1].max(), height)
    if c1 <= c0 or r1 <= r0:
        return mask
    xs, ys = np.meshgrid(np.arange(c0, c1) + 0.5, np.arange(r0, r1) + 0.5)
    inside = np.zeros(xs.shape, dtype=bool)
    for (xi, yi), (xj, yj) in zip(pts, np.roll(pts, 1, axis=0)):
        crosses = (yi > ys) != (yj > ys)
        if not crosses.any():
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = (xj - xi) * (ys - yi) / (yj - yi) + xi
        inside ^= crosses & (xs < x_at)
    mask[r0:r1, c0:c1] = inside
    return mask


def shapes_to_mask(boxes: Sequence[Mapping], polygons: Sequence[Mapping], height: int, width: int) -> np.ndarray:
    """Union of Object-CXR objects: ``rect`` boxes, ``ellipse`` boxes (true ellipses) and the
    ``polygons`` (their ``polygon_bbox`` boxes are only bounding boxes and are not drawn)."""
    mask = boxes_to_mask([b for b in boxes or [] if b.get("shape", "rect") in ("rect", "mask_bbox")], height, width)
    for b in boxes or []:
        if b.get("shape") == "ellipse":
            mask |= ellipse_to_mask(b, height, width)
    for p in polygons or []:
        mask |= polygon_to_mask(p["points"], height, width)
    return mask


class ShapesSegmentationDataset(SegmentationDataset):
    """:class:`SegmentationDataset` that also rasterizes Object-CXR ``shapes`` and, with
    ``mask_from="auto"``, follows each row's ``mask_source`` (``rle``, ``boxes``, ``shapes``; a row
    without one uses its RLE when it has one, else its boxes)."""

    columns = ("mask_rle", "boxes", "polygons", "mask_source")

    def __init__(self, *args, mask_from: str = "auto", **kwargs):
        if mask_from not in MASK_FROM:
            raise ValueError(f"mask_from must be one of {MASK_FROM}, got {mask_from!r}")
        super().__init__(*args, mask_from="rle", **kwargs)
        self.mask_from = mask_from

    def row_source(self, index: int) -> str:
        if self.mask_from != "auto":
            return self.mask_from
        row = self.rows[index]
        source = row.get("mask_source")
        if source is None:
            return "rle" if row.get("mask_rle") is not None else "boxes"
        if source not in ("rle", "boxes", "shapes"):
            raise ValueError(f"{self.manifest}: row {row['sample_id']!r}: mask_source {source!r} is not supported "
                             "(rle, boxes, shapes); materialized PNG masks are not read by this loader")
        return source

    def native_mask(self, index: int, shape: tuple[int, int]) -> np.ndarray:
        from place_bench.data.rle import rle_to_mask

        row = self.rows[index]
        source = self.row_source(index)
        if source == "shapes":
            return shapes_to_mask(row["boxes"] or [], row.get("polygons") or [], *shape)
        if source == "boxes":
            return boxes_to_mask(row["boxes"] or [], *shape)
        if row["mask_rle"] is None:
            raise ValueError(f"{self.manifest}: row {row['sample_id']!r} has no mask_rle (try mask_from='boxes')")
        mask = rle_to_mask(row["mask_rle"], where=f"{self.manifest}: row {row['sample_id']!r}")
        if mask.shape != tuple(shape):
            raise ValueError(f"{self.manifest}: row {row['sample_id']!r}: mask is {mask.shape[0]}x{mask.shape[1]} "
                             f"but the image is {shape[0]}x{shape[1]}")
        return mask


def preprocessor_norm(pipeline: Mapping[str, Any] | None) -> tuple[list[float], list[float]]:
    """``(mean, std)`` for ``SegDataPreProcessor`` / ``DetDataPreProcessor`` on 0-255 inputs: the
    suite pipeline's mean / std (default 0.5 / 0.5) times 255."""
    pipeline = dict(pipeline or {})
    mean = [float(m) * PIXEL_RANGE for m in pipeline.get("mean", MGCA_MEAN)]
    std = [float(s) * PIXEL_RANGE for s in pipeline.get("std", MGCA_STD)]
    return mean, std


def raw_pipeline(pipeline: Mapping[str, Any] | None) -> dict:
    """The suite pipeline with its normalization replaced by a 0-255 scaling (mean 0, std 1/255),
    so that the OpenMMLab data preprocessor normalizes."""
    pipeline = dict(pipeline or {})
    channels = len(pipeline.get("mean", MGCA_MEAN))
    return dict(pipeline, mean=(0.0,) * channels, std=(1.0 / PIXEL_RANGE,) * channels)


# --------------------------------------------------------------------------------------------
# The mmseg dataset
# --------------------------------------------------------------------------------------------


class PlaceBenchSegDataset(BaseSegDataset):
    """One split (and label fraction) of a suite manifest as an mmseg dataset; see the module docstring.

    :param manifest, root, split, fraction, train, seed: as :class:`SegmentationDataset`.
    :param suite_pipeline: the section-2.0 settings (``resize_to``, ``crop``, ``mean``, ``std``);
        the mean / std are applied by the data preprocessor (:func:`preprocessor_norm`), not here.
    :param mask_from: ``auto`` (each row's ``mask_source``), ``rle``, ``boxes`` or ``shapes``.
    :param pipeline: mmseg transforms applied to the transformed arrays (default: PackSegInputs).
    """

    METAINFO = dict(classes=("background", "foreground"), palette=[[0, 0, 0], [255, 255, 255]])

    def __init__(self, manifest: str | os.PathLike, root: str | os.PathLike | None = None, split: str = "train",
                 fraction: float = 1.0, suite_pipeline: Mapping[str, Any] | None = None, train: bool = False,
                 seed: int = 0, mask_from: str = "auto", pipeline: Sequence[Any] | None = None, **kwargs):
        self.source = ShapesSegmentationDataset(manifest, root, split=split, fraction=fraction,
                                                pipeline=raw_pipeline(suite_pipeline), train=train, seed=seed,
                                                mask_from=mask_from)
        if pipeline is None:
            pipeline = [dict(type="PackSegInputs", meta_keys=PACK_META_KEYS)]
        # mmengine's Registry.build looks up the *current default scope's* registry (e.g. the
        # 'mmengine' scope a pretraining Runner left behind), so pin mmseg's for these builds.
        from mmengine.registry import DefaultScope

        with DefaultScope.overwrite_default_scope("mmseg"):
            pipeline = [TRANSFORMS.build(dict(t)) if isinstance(t, Mapping) else t for t in pipeline]
        kwargs.setdefault("serialize_data", False)
        super().__init__(pipeline=pipeline, **kwargs)

    def load_data_list(self) -> list[dict]:
        return [dict(img_path=str(self.source.root / row["image_path"]), seg_map_path=None,
                     sample_id=str(row["sample_id"]), suite_index=i, label_map=self.label_map,
                     reduce_zero_label=False, seg_fields=[])
                for i, row in enumerate(self.source.rows)]

    @property
    def sample_ids(self) -> list[str]:
        return [str(r["sample_id"]) for r in self.source.rows]

    def load_arrays(self, key) -> dict[str, Any]:
        """The transformed image (HWC float32, 0-255) and mask (uint8) of ``key`` (index or (index, epoch))."""
        item = self.source[key]
        img = item["image"].permute(1, 2, 0).numpy().astype(np.float32, copy=False)
        mask = item["mask"].numpy().astype(np.uint8, copy=False)
        return dict(img=img, gt_seg_map=mask, img_shape=img.shape[:2], ori_shape=img.shape[:2],
                    seg_fields=["gt_seg_map"])

    def __getitem__(self, key) -> dict:
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        if not self._fully_initialized:
            self.full_init()
        results = self.get_data_info(int(index))
        results.update(self.load_arrays((int(index), int(epoch))))
        return self.pipeline(results)


DATASETS.register_module(name="PlaceBenchSegDataset", module=PlaceBenchSegDataset, force=True)
