"""Image-report pairs of a manifest, for pretraining and retrieval.

An item is ``{"image": (3, crop, crop) float tensor, "report": str, "sample_id": str}``.
The report text follows the MGCA caption rule (impression, then findings, joined
by a space; the full ``report`` when both sections are empty); rows with no text
at all are left out and counted in ``skipped_empty``.

Random crops are reproducible: the window of item ``i`` in epoch ``e`` comes from
a generator seeded with ``(seed, i, e)``. :class:`EpochIndexSampler` hands the
epoch to the dataset with each index, so workers, restarts and resumed runs see
the same crops as an uninterrupted run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from mmengine.dataset import DefaultSampler

from place_bench.data.images import CXRTransform, read_image

TEXT_FIELDS = ("impression_findings", "findings", "impression", "report")


def caption(row: dict, text: str = "impression_findings") -> str:
    """The text of a manifest row used as the report (see module docstring)."""
    findings = (row.get("findings") or "").strip()
    impression = (row.get("impression") or "").strip()
    if text == "impression_findings":
        joined = " ".join(part for part in (impression, findings) if part)
        return joined or (row.get("report") or "").strip()
    if text in ("findings", "impression", "report"):
        return (row.get(text) or "").strip()
    raise ValueError(f"data text field {text!r} is not one of {TEXT_FIELDS}")


class ImageReportDataset(torch.utils.data.Dataset):
    """Pairs of one split of a manifest.

    :param manifest: the ``.parquet`` manifest written by ``prepare`` (or the synthetic writer).
    :param root: the native root the manifest's ``image_path`` values are relative to
        (default: the ``root`` recorded in the manifest's sidecar).
    :param split: ``train``, ``valid`` or ``test``.
    :param text: which text is the report (:data:`TEXT_FIELDS`).
    :param pipeline: keyword arguments of :class:`CXRTransform` (``resize_to``, ``crop``, ``mean``, ``std``).
    :param train: random crops (True) or centre crops.
    :param seed: seed of the random crops.
    :param limit: keep only the first N pairs (tiny runs).
    """

    def __init__(
        self,
        manifest: str | os.PathLike,
        root: str | os.PathLike | None = None,
        split: str = "train",
        text: str = "impression_findings",
        pipeline: dict | None = None,
        train: bool = True,
        seed: int = 0,
        limit: int | None = None,
    ):
        from place_bench.data.manifest import iter_manifest, read_sidecar, sidecar_path

        self.manifest = Path(manifest)
        if not self.manifest.is_file():
            raise FileNotFoundError(f"data manifest '{self.manifest}' does not exist (run `place-bench data prepare` or `data synth`)")
        sidecar = read_sidecar(sidecar_path(self.manifest))
        self.fingerprint = (sidecar.get("manifest") or {}).get("fingerprint")
        recorded = sidecar.get("native_root")
        if root is None and recorded is None:
            raise ValueError(f"{self.manifest}: the sidecar records no native root; give data root=...")
        self.root = Path(root if root is not None else recorded)
        self.transform = CXRTransform(train=train, **(pipeline or {}))
        self.train, self.seed = train, seed
        self.paths: list[str] = []
        self.reports: list[str] = []
        self.sample_ids: list[str] = []
        self.skipped_empty = 0
        for row in iter_manifest(self.manifest, columns=["sample_id", "split", "image_path", "report", "findings", "impression"]):
            if row["split"] != split or not row.get("image_path"):
                continue
            report = caption(row, text)
            if not report:
                self.skipped_empty += 1
                continue
            self.paths.append(row["image_path"])
            self.reports.append(report)
            self.sample_ids.append(row["sample_id"])
            if limit is not None and len(self.paths) >= limit:
                break
        if not self.paths:
            raise ValueError(f"{self.manifest}: no image-report pairs in split {split!r}")

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        image = read_image(self.root / self.paths[index])
        rng = np.random.default_rng([self.seed, index, epoch]) if self.train else None
        return {
            "image": self.transform(image, rng),
            "report": self.reports[index],
            "sample_id": self.sample_ids[index],
        }


class EpochIndexSampler(DefaultSampler):
    """mmengine's ``DefaultSampler`` (shuffled per epoch, split across ranks) yielding
    ``(index, epoch)`` so datasets can seed per-epoch augmentation.

    With ``infinite=True`` (iteration-based training) it runs on from epoch to epoch
    itself. mmengine's iteration loop otherwise restarts the data loader at every
    epoch end and sleeps 2 s there, which dominates short epochs.
    """

    def __init__(self, *args, infinite: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.infinite = infinite

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.epoch
        while True:
            self.epoch = epoch  # DefaultSampler shuffles with seed + self.epoch
            for index in super().__iter__():
                yield (index, epoch)
            if not self.infinite:
                return
            epoch += 1


def register_sampler() -> None:
    """Make ``dict(type="EpochIndexSampler")`` buildable by the Runner (which builds
    samplers after setting up distributed training, so ranks are known)."""
    from mmengine.registry import DATA_SAMPLERS

    if DATA_SAMPLERS.get("EpochIndexSampler") is None:
        DATA_SAMPLERS.register_module(module=EpochIndexSampler)


class PairCollate:
    """Stacks images and tokenizes reports with ``tokenize(list[str]) -> TextBatch``."""

    def __init__(self, tokenize: Callable[[Sequence[str]], Any]):
        self.tokenize = tokenize

    def __call__(self, items: Sequence[dict]) -> dict[str, Any]:
        return {
            "images": torch.stack([item["image"] for item in items]),
            "reports": self.tokenize([item["report"] for item in items]),
        }
