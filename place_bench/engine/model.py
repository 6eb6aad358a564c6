"""The mmengine face of the vision-language model: data preprocessor and BaseModel wrapper."""

from __future__ import annotations

from typing import Any

import torch
from mmengine.model import BaseDataPreprocessor, BaseModel

from place_bench.model.outputs import TextBatch
from place_bench.model.vlm import VisionLanguageModel


class PairDataPreprocessor(BaseDataPreprocessor):
    """Moves a collated pair batch ``{"images": (B,3,H,W), "reports": TextBatch}`` to the device."""

    def forward(self, data: dict, training: bool = False) -> dict:
        images = data["images"].to(self.device, non_blocking=True)
        reports = data["reports"]
        if isinstance(reports, TextBatch):
            reports = reports.to(self.device)
        return {"images": images, "reports": reports}


class PretrainModel(BaseModel):
    """Wraps :class:`VisionLanguageModel` for the Runner: ``mode="loss"`` returns its losses.

    The Runner's checkpoints hold this wrapper (keys ``vlm.``); the exported suite
    checkpoint holds ``vlm`` alone.
    """

    def __init__(self, vlm: VisionLanguageModel):
        super().__init__(data_preprocessor=PairDataPreprocessor())
        self.vlm = vlm

    def forward(self, images: torch.Tensor, reports: Any, mode: str = "loss") -> dict[str, torch.Tensor]:
        if mode != "loss":
            raise ValueError(f"pretraining runs in mode 'loss' only, not {mode!r}")
        return self.vlm.losses(images, reports)
