"""Adapters that put the suite's pretrained image encoders into mmsegmentation and mmdetection.

Importing this package registers, from outside those libraries (nothing is copied or patched):

* ``PlaceBenchBackbone`` (:class:`~place_bench.openmmlab.backbone.SuiteBackbone`) in
  ``mmseg.registry.MODELS`` and ``mmdet.registry.MODELS``;
* the segmentation dataset reader and its transforms in ``mmseg.registry.DATASETS`` /
  ``TRANSFORMS`` (:mod:`place_bench.openmmlab.seg_dataset`), and the per-image Dice metric in
  ``mmseg.registry.METRICS`` (:mod:`place_bench.openmmlab.seg_metric`), when mmsegmentation is
  installed;
* whatever the detection adapters (``det_*`` modules) register, when present.

Registration is idempotent: importing twice (or reloading) re-registers the same names with
``force=True``.
"""

from __future__ import annotations

import importlib
import pkgutil

from place_bench.openmmlab.backbone import SuiteBackbone, register_backbone

__all__ = ["SuiteBackbone", "register_all", "register_backbone"]


def register_all() -> None:
    """Register every adapter (backbone, segmentation, detection) into the OpenMMLab registries."""
    register_backbone()
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith(("seg_", "det_")):
            try:
                importlib.import_module(f"{__name__}.{info.name}")
            except ModuleNotFoundError as exc:  # the library that module adapts is not installed
                if (exc.name or "").split(".")[0] not in ("mmseg", "mmdet"):
                    raise


register_all()
