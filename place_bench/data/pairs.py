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
from typing import Any, Callable, Iterator, Sequence

import torch
from mmengine.dataset import DefaultSampler

from place_bench.data.images import CXRTransform
from place_bench.data.loaders import ManifestSplit

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


class ImageReportDataset(ManifestSplit):
    """Pairs of one split of a manifest (manifest, root and split handling as every loader:
    :class:`place_bench.data.loaders.ManifestSplit`).

    :param manifest: the ``.parquet`` manifest written by ``prepare`` (or the synthetic writer).
    :param root: the native root the manifest's ``image_path`` values are relative to
        (default: the ``native_root`` recorded in the manifest's sidecar).
    :param split: ``train``, ``valid``, ``test`` or a named subset.
    :param text: which text is the report (:data:`TEXT_FIELDS`).
    :param pipeline: keyword arguments of :class:`CXRTransform` (``resize_to``, ``crop``, ``mean``, ``std``).
    :param train: random crops (True) or centre crops.
    :param seed: seed of the random crops.
    :param limit: keep only the first N pairs (tiny runs).
    :param pairing: ``aligned`` (each image with its own report) or ``shuffled``: the reports
        permuted once across the kept images with ``pairing_seed``, so text carries no
        information about its image (the alignment control's arm B, datasets.md section 4.9).
    :param hflip: probability of a left-right mirror of a training image (the control's
        flip-augmented arm D; 0 by default because reports name sides). A pretraining-only
        augmentation, so it is a key of ``data.train``, not of the shared ``data.pipeline``
        that downstream tasks inherit.
    """

    PAIRINGS = ("aligned", "shuffled")

    columns = ("report", "findings", "impression")

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
        pairing: str = "aligned",
        pairing_seed: int = 0,
        hflip: float = 0.0,
    ):
        if text not in TEXT_FIELDS:
            raise ValueError(f"data text field {text!r} is not one of {TEXT_FIELDS}")
        if pairing not in self.PAIRINGS:
            raise ValueError(f"data.train.pairing {pairing!r} is not one of {self.PAIRINGS}")
        self.text, self.limit, self.skipped_empty = text, limit, 0
        super().__init__(manifest, root, split, 1.0, seed, train)
        self.fingerprint = (self.sidecar.get("manifest") or {}).get("fingerprint")
        self.transform = CXRTransform(train=train, **{**(pipeline or {}), "hflip": hflip})
        self.pairing = pairing
        if pairing == "shuffled":
            self._shuffle_captions(pairing_seed)

    def _shuffle_captions(self, seed: int) -> None:
        """Permute the captions once across rows (images keep their order and ids)."""
        import numpy as np

        order = np.random.default_rng(seed).permutation(len(self.rows))
        captions = [self.rows[int(j)]["caption"] for j in order]
        for row, text in zip(self.rows, captions):
            row["caption"] = text

    def _select(self, rows: list[dict]) -> list[dict]:
        kept = []
        for row in super()._select(rows):
            row["caption"] = caption(row, self.text)
            if not row["caption"]:
                self.skipped_empty += 1
                continue
            kept.append(row)
            if self.limit is not None and len(kept) >= self.limit:
                break
        return kept

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        index, rng = self._key(key)
        row = self.rows[index]
        return {
            "image": self.transform(self._read(row["image_path"]), rng),
            "report": row["caption"],
            "sample_id": row["sample_id"],
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
