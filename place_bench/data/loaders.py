"""Torch datasets over prepared manifests for the downstream tasks (datasets.md sections 2.1-2.7).

=========================  ==========================================================================
dataset                    item
=========================  ==========================================================================
ClassificationDataset      ``image`` float32 ``(3, S, S)``; ``target`` float32 ``(L,)`` (multi-label)
                           or int64 ``()`` (multi-class); ``target_mask`` float32 ``(L,)`` only with
                           ``uncertain="ignore"``; ``sample_id``
SegmentationDataset        ``image`` float32 ``(3, S, S)``; ``mask`` uint8 ``(S, S)`` in {0, 1}
DetectionDataset           ``image`` float32 ``(3, size, size)``; ``boxes`` float32 ``(K, 4)`` xyxy in
                           output pixels; ``labels`` int64 ``(K,)``; ``orig_size`` ``(h, w)``
ReportGenerationDataset    ``images`` float32 ``(V, 3, S, S)``; ``report`` str
=========================  ==========================================================================

Images go through the shared pipeline of section 2.0 (:class:`CXRTransform`: letterbox 256, crop
224, mean = std = 0.5; ``pipeline`` holds its keyword arguments), except detection, which squashes
the whole image to ``size x size`` (bilinear) as MGCA does (section 2.6).

Coordinates: native pixels, origin at the top-left corner of the top-left pixel, x right, y down
(the manifest convention). Pixel ``(row r, col c)`` covers ``[c, c+1) x [r, r+1)``.

Label fractions (section 3.3): with ``fraction = p < 1`` the ``train`` split keeps exactly the rows
with ``frac_rank < round(p * n_train)`` (:func:`place_bench.data.splits.in_fraction`), where
``n_train`` is the sidecar's ``frac_base`` (else the number of train rows carrying a ``frac_rank``).
Subsets are therefore nested (1 % within 10 % within 100 %). ``p = 1`` keeps every row of the split;
``p < 1`` on any split but ``train`` is an error.

Random crops (``train=True``) are reproducible: item ``i`` in epoch ``e`` uses a generator seeded
with ``(seed, i, e)``; the key may be ``(index, epoch)`` from
:class:`place_bench.data.pairs.EpochIndexSampler`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from place_bench.data.images import (
    MGCA_MEAN,
    MGCA_STD,
    CXRTransform,
    Geometry,
    normalize,
    read_image,
    resize,
    to_tensor,
)
from place_bench.data.splits import fraction_size, split_members

__all__ = [
    "ClassificationDataset",
    "DetectionDataset",
    "ReportGenerationDataset",
    "SegmentationDataset",
    "boxes_to_mask",
    "detection_collate",
    "warp_mask",
]

UNCERTAIN_POLICIES = ("ones", "zeros", "ignore")
#: GLoRIA/MGCA's per-label uncertainty mapping (datasets.md section 1.2): U-Ones for these
#: competition labels, U-Zeros for every other label.
MGCA_U_ONES = ("Atelectasis", "Edema", "Pleural Effusion")


# --------------------------------------------------------------------------------------------
# Mask helpers
# --------------------------------------------------------------------------------------------


def boxes_to_mask(boxes: Sequence[dict], height: int, width: int) -> np.ndarray:
    """Rasterize ``xyxy`` boxes (native pixels) into a ``bool`` ``(height, width)`` mask.

    A pixel is inside when its centre is: columns ``c`` with ``x1 <= c + 0.5 < x2`` (so an integer
    box ``x1=2, x2=5`` covers columns 2, 3, 4), rows likewise.
    """
    mask = np.zeros((height, width), dtype=bool)
    for b in boxes:
        c0, c1 = max(0, math.ceil(b["x1"] - 0.5)), min(width, math.ceil(b["x2"] - 0.5))
        r0, r1 = max(0, math.ceil(b["y1"] - 0.5)), min(height, math.ceil(b["y2"] - 0.5))
        if c1 > c0 and r1 > r0:
            mask[r0:r1, c0:c1] = True
    return mask


def warp_mask(mask: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Send a native ``(h, w)`` mask through ``geometry`` with nearest-neighbour sampling.

    Output pixel ``(i, j)`` takes the native pixel under its centre ``((j + 0.5 - tx) / sx,
    (i + 0.5 - ty) / sy)``; centres outside the native image (padding) give 0. Returns ``uint8``
    ``(out_h, out_w)`` in {0, 1}.
    """
    h, w = mask.shape
    xs = (np.arange(geometry.out_w) + 0.5 - geometry.tx) / geometry.sx
    ys = (np.arange(geometry.out_h) + 0.5 - geometry.ty) / geometry.sy
    cols, rows = np.floor(xs).astype(np.int64), np.floor(ys).astype(np.int64)
    col_ok, row_ok = (cols >= 0) & (cols < w), (rows >= 0) & (rows < h)
    out = mask[np.clip(rows, 0, h - 1)][:, np.clip(cols, 0, w - 1)]
    out = out & row_ok[:, None] & col_ok[None, :]
    return out.astype(np.uint8)


# --------------------------------------------------------------------------------------------
# Shared manifest reading
# --------------------------------------------------------------------------------------------


class ManifestSplit(torch.utils.data.Dataset):
    """Rows of one split (and label fraction) of a manifest; subclasses build items."""

    columns: tuple[str, ...] = ()

    def __init__(self, manifest, root, split: str, fraction: float, seed: int = 0, train: bool = False):
        from place_bench.data.manifest import iter_manifest, read_sidecar, sidecar_path

        self.manifest = Path(manifest)
        if not self.manifest.is_file():
            raise FileNotFoundError(
                f"data manifest '{self.manifest}' does not exist (run `place-bench data prepare`)"
            )
        try:
            fraction = float(fraction)
        except (TypeError, ValueError):
            raise ValueError(f"fraction must be a number in (0, 1], got {fraction!r}") from None
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        if fraction < 1.0 and split != "train":
            raise ValueError(f"fraction {fraction} applies to the 'train' split only, not {split!r}")
        self.sidecar = read_sidecar(sidecar_path(self.manifest))
        recorded = self.sidecar.get("native_root")
        if root is None and recorded is None:
            raise ValueError(f"{self.manifest}: the sidecar records no native root; give root=...")
        self.root = Path(root if root is not None else recorded)
        self.split, self.fraction, self.seed, self.train = split, fraction, int(seed), bool(train)

        wanted = ["sample_id", "split", "subsets", "frac_rank", "image_path", *self.columns]
        rows = list(iter_manifest(self.manifest, columns=list(dict.fromkeys(wanted))))
        available = sorted({r["split"] for r in rows} | {s for r in rows for s in (r["subsets"] or [])})
        if split not in available:
            raise ValueError(
                f"{self.manifest}: unknown split {split!r}; available: {', '.join(available) or 'none'}"
            )
        rows = [r for r in rows if split_members(r["split"], r["subsets"], split)]
        if fraction < 1.0:
            n_train = self.sidecar.get("frac_base")
            if n_train is None:
                n_train = sum(r["frac_rank"] is not None for r in rows)
            self.n_train = int(n_train)
            keep = fraction_size(fraction, self.n_train)
            rows = [r for r in rows if r["frac_rank"] is not None and r["frac_rank"] < keep]
            if not rows:
                raise ValueError(
                    f"{self.manifest}: fraction {fraction} of {self.n_train} train rows keeps no row "
                    f"(round({fraction} * {self.n_train}) = {keep})"
                )
        self.rows = self._select(rows)
        if not self.rows:
            raise ValueError(f"{self.manifest}: no usable rows in split {split!r}")

    def _select(self, rows: list[dict]) -> list[dict]:
        return [r for r in rows if r.get("image_path")]

    def __len__(self) -> int:
        return len(self.rows)

    def _key(self, key) -> tuple[int, np.random.Generator | None]:
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        rng = np.random.default_rng([self.seed, int(index), int(epoch)]) if self.train else None
        return int(index), rng

    def _read(self, rel_path: str) -> np.ndarray:
        return read_image(self.root / rel_path)


# --------------------------------------------------------------------------------------------
# Classification
# --------------------------------------------------------------------------------------------


class ClassificationDataset(ManifestSplit):
    """Images with classification targets (sections 2.1-2.3).

    ``target="auto"`` is multi-class (``class_index``, int64 scalar; COVIDx) when the sidecar
    lists ``class_names`` and the rows carry ``class_index``, else multi-label over ``labels``
    (float32 ``(L,)``). Multi-label raw values 1 / 0 / -1 / NaN map to: 1 -> 1, 0 -> 0,
    NaN (blank) -> 0, -1 (uncertain) -> 1 with ``uncertain="ones"`` (U-Ones), 0 with ``"zeros"``,
    and 0 with ``target_mask`` 0 with ``"ignore"`` (``target_mask`` is 1 elsewhere);
    ``"mgca"`` is GLoRIA/MGCA's per-label mix (U-Ones for :data:`MGCA_U_ONES`, U-Zeros otherwise).
    ``labels``: names (from the sidecar's ``label_names``) to keep, in that order (e.g. the five
    CheXpert competition labels); default all.
    """

    columns = ("labels", "class_index")

    def __init__(
        self,
        manifest: str | os.PathLike,
        root: str | os.PathLike | None = None,
        split: str = "train",
        fraction: float = 1.0,
        pipeline: dict | None = None,
        train: bool = False,
        seed: int = 0,
        uncertain: str = "ones",
        labels: Sequence[str] | None = None,
        target: str = "auto",
    ):
        if uncertain not in (*UNCERTAIN_POLICIES, "mgca"):
            raise ValueError(f"uncertain must be one of {(*UNCERTAIN_POLICIES, 'mgca')}, got {uncertain!r}")
        if target not in ("auto", "multilabel", "multiclass"):
            raise ValueError(f"target must be 'auto', 'multilabel' or 'multiclass', got {target!r}")
        super().__init__(manifest, root, split, fraction, seed, train)
        self.transform = CXRTransform(train=train, **(pipeline or {}))
        self.uncertain = uncertain
        names = list(self.sidecar.get("label_names") or [])
        class_names = list(self.sidecar.get("class_names") or [])
        if target == "auto":
            has_class = class_names and all(r["class_index"] is not None for r in self.rows)
            target = "multiclass" if has_class else "multilabel"
        self.target_kind = target
        if target == "multiclass":
            if any(r["class_index"] is None for r in self.rows):
                bad = next(r["sample_id"] for r in self.rows if r["class_index"] is None)
                raise ValueError(f"{self.manifest}: row {bad!r} has no class_index")
            self.class_names = class_names
            self.targets = np.asarray([r["class_index"] for r in self.rows], dtype=np.int64)
            self.label_names = class_names
            return
        if labels is not None:
            unknown = [n for n in labels if n not in names]
            if unknown:
                raise ValueError(f"{self.manifest}: unknown label(s) {unknown}; label_names: {names}")
            idx = [names.index(n) for n in labels]
        else:
            idx = list(range(len(names)))
        self.label_names = [names[i] for i in idx]
        raw = np.full((len(self.rows), len(names)), np.nan, dtype=np.float32)
        for k, r in enumerate(self.rows):
            values = r["labels"] or []
            if len(values) != len(names):
                raise ValueError(
                    f"{self.manifest}: row {r['sample_id']!r} has {len(values)} labels, expected {len(names)}"
                )
            raw[k] = np.asarray([np.nan if v is None else v for v in values], dtype=np.float32)
        raw = raw[:, idx]
        uncertain_cells = raw == -1
        self.targets = np.where(np.isnan(raw), 0.0, raw).astype(np.float32)
        if uncertain == "mgca":
            ones = np.asarray([n in MGCA_U_ONES for n in self.label_names])
            self.targets[uncertain_cells & ones[None, :]] = 1.0
            self.targets[uncertain_cells & ~ones[None, :]] = 0.0
        else:
            self.targets[uncertain_cells] = 1.0 if uncertain == "ones" else 0.0
        self.target_masks = (~uncertain_cells).astype(np.float32) if uncertain == "ignore" else None

    def __getitem__(self, key) -> dict[str, Any]:
        index, rng = self._key(key)
        row = self.rows[index]
        item = {
            "image": self.transform(self._read(row["image_path"]), rng),
            "target": torch.from_numpy(np.array(self.targets[index])),
            "sample_id": row["sample_id"],
        }
        if self.target_kind == "multilabel" and self.target_masks is not None:
            item["target_mask"] = torch.from_numpy(self.target_masks[index].copy())
        return item


# --------------------------------------------------------------------------------------------
# Segmentation
# --------------------------------------------------------------------------------------------


class SegmentationDataset(ManifestSplit):
    """Images with binary masks (section 2.5).

    ``mask_from="rle"``: the row's canonical ``mask_rle`` (native size; SIIM); ``"boxes"``: the
    row's boxes rasterized at the native image size (:func:`boxes_to_mask`; RSNA). The mask goes
    through the image's own geometry (letterbox, then the same crop) with nearest-neighbour
    sampling (:func:`warp_mask`); nothing is ever flipped. A mask whose size differs from the
    decoded image is an error.
    """

    columns = ("mask_rle", "boxes")

    def __init__(
        self,
        manifest: str | os.PathLike,
        root: str | os.PathLike | None = None,
        split: str = "train",
        fraction: float = 1.0,
        pipeline: dict | None = None,
        train: bool = False,
        seed: int = 0,
        mask_from: str = "rle",
    ):
        if mask_from not in ("rle", "boxes"):
            raise ValueError(f"mask_from must be 'rle' or 'boxes', got {mask_from!r}")
        self.mask_from = mask_from
        super().__init__(manifest, root, split, fraction, seed, train)
        self.transform = CXRTransform(train=train, **(pipeline or {}))

    def native_mask(self, index: int, shape: tuple[int, int]) -> np.ndarray:
        """The ``bool`` native-size mask of row ``index`` for an image of ``shape`` ``(h, w)``."""
        from place_bench.data.rle import rle_to_mask

        row = self.rows[index]
        if self.mask_from == "boxes":
            return boxes_to_mask(row["boxes"] or [], *shape)
        if row["mask_rle"] is None:
            raise ValueError(f"{self.manifest}: row {row['sample_id']!r} has no mask_rle (try mask_from='boxes')")
        mask = rle_to_mask(row["mask_rle"], where=f"{self.manifest}: row {row['sample_id']!r}")
        if mask.shape != tuple(shape):
            raise ValueError(
                f"{self.manifest}: row {row['sample_id']!r}: mask is {mask.shape[0]}x{mask.shape[1]} "
                f"but the image is {shape[0]}x{shape[1]}"
            )
        return mask

    def __getitem__(self, key) -> dict[str, Any]:
        index, rng = self._key(key)
        row = self.rows[index]
        image = self._read(row["image_path"])
        tensor, geometry = self.transform.apply(image, rng)
        mask = warp_mask(self.native_mask(index, image.shape), geometry)
        return {"image": tensor, "mask": torch.from_numpy(mask), "sample_id": row["sample_id"]}


# --------------------------------------------------------------------------------------------
# Detection
# --------------------------------------------------------------------------------------------


class DetectionDataset(ManifestSplit):
    """Images with boxes, MGCA's detection input (section 2.6): the whole image squashed to
    ``size x size`` (bilinear, no letterbox, no augmentation), normalized with ``mean`` / ``std``.

    Boxes: native ``xyxy`` scaled by ``(size / w, size / h)`` with ``(h, w)`` the decoded image
    size (``orig_size``). ``labels``: index of each box's label in ``classes`` (default: the sorted
    distinct box labels of the whole manifest, so every split shares one mapping).
    ``include_negatives=False`` drops rows without boxes.
    """

    columns = ("boxes",)

    def __init__(
        self,
        manifest: str | os.PathLike,
        root: str | os.PathLike | None = None,
        split: str = "train",
        fraction: float = 1.0,
        size: int = 224,
        seed: int = 0,
        include_negatives: bool = True,
        classes: Sequence[str] | None = None,
        mean: Sequence[float] = MGCA_MEAN,
        std: Sequence[float] = MGCA_STD,
    ):
        self.include_negatives = include_negatives
        super().__init__(manifest, root, split, fraction, seed, train=False)
        self.size, self.mean, self.std = int(size), tuple(mean), tuple(std)
        if classes is None:
            from place_bench.data.manifest import iter_manifest

            found = {b["label"] for r in iter_manifest(self.manifest, columns=["boxes"]) for b in (r["boxes"] or [])}
            classes = sorted(found)
        self.classes = list(classes)
        lookup = {c: i for i, c in enumerate(self.classes)}
        for r in self.rows:
            for b in r["boxes"] or []:
                if b["label"] not in lookup:
                    raise ValueError(f"{self.manifest}: row {r['sample_id']!r}: box label {b['label']!r} not in {self.classes}")
        self._lookup = lookup

    def _select(self, rows: list[dict]) -> list[dict]:
        rows = super()._select(rows)
        return rows if self.include_negatives else [r for r in rows if r["boxes"]]

    def __getitem__(self, key) -> dict[str, Any]:
        index, _ = self._key(key)
        row = self.rows[index]
        image = self._read(row["image_path"])
        h, w = image.shape
        squashed = resize(image, (self.size, self.size), "bilinear")
        tensor = normalize(to_tensor(squashed, len(self.mean)), self.mean, self.std)
        native = np.asarray([[b["x1"], b["y1"], b["x2"], b["y2"]] for b in row["boxes"] or []], dtype=np.float64)
        boxes = native.reshape(-1, 4) * np.asarray([self.size / w, self.size / h] * 2)
        labels = [self._lookup[b["label"]] for b in row["boxes"] or []]
        return {
            "image": tensor,
            "boxes": torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            "labels": torch.as_tensor(labels, dtype=torch.int64),
            "orig_size": (int(h), int(w)),
            "sample_id": row["sample_id"],
        }


def detection_collate(items: Sequence[dict]) -> dict[str, Any]:
    """Batch detection items: ``images`` stacked ``(B, 3, S, S)``; ``boxes`` / ``labels`` lists
    of per-image tensors; ``orig_sizes`` int64 ``(B, 2)`` as ``(h, w)``; ``sample_ids`` list."""
    return {
        "images": torch.stack([it["image"] for it in items]),
        "boxes": [it["boxes"] for it in items],
        "labels": [it["labels"] for it in items],
        "orig_sizes": torch.as_tensor([it["orig_size"] for it in items], dtype=torch.int64).reshape(-1, 2),
        "sample_ids": [it["sample_id"] for it in items],
    }


# --------------------------------------------------------------------------------------------
# Report generation
# --------------------------------------------------------------------------------------------


class ReportGenerationDataset(ManifestSplit):
    """Images with their report, R2Gen style (section 2.7).

    ``views``: images per sample, ``image_path`` then ``aux_image_paths`` (R2Gen: 2 for IU X-ray,
    1 for MIMIC); default 2 when the sidecar's dataset is ``iu_xray``, else 1. A row with fewer
    images is an error. Each view goes through the pipeline with its own draw of the item's
    generator. ``report``: ``findings`` (R2Gen text), else ``report``; rows with no text are left
    out and counted in ``skipped_empty``. ``max_words`` keeps the first N whitespace-separated
    words (no R2Gen cleaning here).
    """

    columns = ("aux_image_paths", "findings", "report")

    def __init__(
        self,
        manifest: str | os.PathLike,
        root: str | os.PathLike | None = None,
        split: str = "train",
        pipeline: dict | None = None,
        train: bool = False,
        seed: int = 0,
        max_words: int | None = None,
        views: int | None = None,
    ):
        self.skipped_empty = 0
        super().__init__(manifest, root, split, 1.0, seed, train)
        self.views = views if views is not None else (2 if self.sidecar.get("dataset") == "iu_xray" else 1)
        if self.views < 1:
            raise ValueError(f"views must be >= 1, got {self.views}")
        for r in self.rows:
            if 1 + len(r["aux_image_paths"] or []) < self.views:
                raise ValueError(
                    f"{self.manifest}: row {r['sample_id']!r} has {1 + len(r['aux_image_paths'] or [])} "
                    f"image(s), {self.views} views requested"
                )
        self.transform = CXRTransform(train=train, **(pipeline or {}))
        self.max_words = max_words

    def _select(self, rows: list[dict]) -> list[dict]:
        kept = []
        for r in super()._select(rows):
            if (r["findings"] or r["report"] or "").strip():
                kept.append(r)
            else:
                self.skipped_empty += 1
        return kept

    def __getitem__(self, key) -> dict[str, Any]:
        index, rng = self._key(key)
        row = self.rows[index]
        paths = [row["image_path"], *(row["aux_image_paths"] or [])][: self.views]
        images = torch.stack([self.transform(self._read(p), rng) for p in paths])
        text = (row["findings"] or row["report"] or "").strip()
        if self.max_words is not None:
            text = " ".join(text.split()[: self.max_words])
        return {"images": images, "report": text, "sample_id": row["sample_id"]}
