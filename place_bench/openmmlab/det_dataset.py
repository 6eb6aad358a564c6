"""A suite manifest split as an mmdetection dataset (``PlaceBenchDetDataset`` in mmdet's
``DATASETS``), the input of the ``det`` task (datasets.md section 2.6).

Items come from the suite's :class:`~place_bench.data.loaders.DetectionDataset` -- MGCA's
detection input: the whole image squashed to ``size x size`` (bilinear, no letterbox, no
augmentation), normalized with mean = std = 0.5, boxes scaled per axis to the squashed frame --
and are packed by mmdet's own ``PackDetInputs`` (the default ``pipeline``). Label fractions are
the manifest's nested ``frac_rank`` subsets of the train split (section 3.3), as for every suite
loader; negatives (rows without boxes) are included unless ``include_negatives=False``.

Boxes are whatever the manifest stores, which for the suite's preparers is the **tight** box of
each object: RSNA rectangles; Object-CXR rectangles, ellipse bounding boxes and polygon bounding
boxes (``shape`` ``rect`` / ``ellipse`` / ``polygon_bbox``; section 5 pitfall 11: not MGCA's
inflated polygon boxes).

The results dict handed to the pipeline (mmdet conventions):

* ``img``: float32 ``(size, size, 3)``, already normalized (the model's ``DetDataPreprocessor``
  must not normalize again: ``mean=None, std=None``);
* ``gt_bboxes``: ``HorizontalBoxes`` ``(K, 4)`` xyxy in network-input pixels; ``gt_bboxes_labels``
  int64 ``(K,)`` (index in ``classes``); ``gt_ignore_flags`` bool ``(K,)`` all False;
* ``img_id``: the item's position in this dataset; ``sample_id``: the manifest's id;
  ``img_path``; ``ori_shape`` = the decoded native ``(h, w)``; ``img_shape`` = ``(size, size)``;
  ``scale_factor`` = ``(size / w, size / h)``, so that ``rescale=True`` predictions come back in
  native pixels.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np
import torch

from place_bench.data.images import MGCA_MEAN, MGCA_STD

__all__ = ["DATASET_NAME", "META_KEYS", "PlaceBenchDetDataset", "default_pipeline"]

DATASET_NAME = "PlaceBenchDetDataset"
#: Meta keys ``PackDetInputs`` keeps (mmdet's defaults plus the suite's ``sample_id``).
META_KEYS = ("img_id", "sample_id", "img_path", "ori_shape", "img_shape", "scale_factor")


def default_pipeline() -> list[dict]:
    return [dict(type="PackDetInputs", meta_keys=META_KEYS)]


class PlaceBenchDetDataset(torch.utils.data.Dataset):
    """One split (and label fraction) of a detection manifest, as mmdet items.

    :param manifest, root, split, fraction, size, include_negatives, classes, mean, std: as
        :class:`~place_bench.data.loaders.DetectionDataset` (``root`` None = the sidecar's native
        root; ``classes`` None = the manifest's sorted box labels).
    :param pipeline: mmdet transform configs (built from mmdet's ``TRANSFORMS``) or callables
        applied to the results dict; default ``PackDetInputs`` with :data:`META_KEYS`.
    :param test_mode: accepted for mmdet compatibility (nothing is filtered either way).
    :param seed: the loader's seed (items are deterministic: no random transform).

    ``metainfo``: ``{"classes": (...)}``; ``sample_ids``: the items' manifest ids in order.
    Keys may be ``(index, epoch)`` pairs (the suite's ``EpochIndexSampler``).
    """

    def __init__(
        self,
        manifest: str | os.PathLike,
        root: str | os.PathLike | None = None,
        split: str = "train",
        fraction: float = 1.0,
        size: int = 224,
        include_negatives: bool = True,
        classes: Sequence[str] | None = None,
        mean: Sequence[float] = MGCA_MEAN,
        std: Sequence[float] = MGCA_STD,
        pipeline: Sequence[dict | Any] | None = None,
        test_mode: bool = False,
        seed: int = 0,
    ):
        from mmengine.dataset import Compose

        from place_bench.data.loaders import DetectionDataset

        self.items = DetectionDataset(manifest, root, split=split, fraction=fraction, size=size, seed=seed,
                                      include_negatives=include_negatives, classes=classes, mean=mean, std=std)
        self.size = int(size)
        self.test_mode = bool(test_mode)
        self.metainfo = {"classes": tuple(self.items.classes)}
        self.pipeline = Compose([_build_transform(t) for t in (default_pipeline() if pipeline is None else pipeline)])

    @property
    def sample_ids(self) -> list[str]:
        return [r["sample_id"] for r in self.items.rows]

    @property
    def classes(self) -> list[str]:
        return list(self.items.classes)

    def __len__(self) -> int:
        return len(self.items)

    def results(self, key) -> dict[str, Any]:
        """The unpacked results dict of item ``key`` (see the module docstring)."""
        from mmdet.structures.bbox import HorizontalBoxes

        index = key[0] if isinstance(key, tuple) else key
        item = self.items[key]
        h, w = item["orig_size"]
        boxes = item["boxes"].reshape(-1, 4)
        labels = item["labels"].numpy().astype(np.int64)
        row = self.items.rows[int(index)]
        return {
            "img": item["image"].permute(1, 2, 0).numpy(),
            "img_id": int(index),
            "sample_id": item["sample_id"],
            "img_path": str(self.items.root / row["image_path"]),
            "ori_shape": (int(h), int(w)),
            "img_shape": (self.size, self.size),
            "scale_factor": (self.size / float(w), self.size / float(h)),
            "gt_bboxes": HorizontalBoxes(boxes.clone()),
            "gt_bboxes_labels": labels,
            "gt_ignore_flags": np.zeros(len(labels), dtype=bool),
        }

    def __getitem__(self, key) -> dict[str, Any]:
        return self.pipeline(self.results(key))


def _build_transform(cfg):
    if callable(cfg):
        return cfg
    from mmdet.registry import TRANSFORMS
    from mmengine.registry import DefaultScope

    # Registry.build resolves through the current default scope, which may be another library's.
    with DefaultScope.overwrite_default_scope("mmdet"):
        return TRANSFORMS.build(dict(cfg))


def register_dataset() -> None:
    from mmdet.registry import DATASETS

    DATASETS.register_module(name=DATASET_NAME, module=PlaceBenchDetDataset, force=True)


register_dataset()
