"""A small convolutional image encoder, as a third-party plugin would ship one."""

from __future__ import annotations

import torch
from torch import nn

from place_bench.model.outputs import ImageFeatures


class ExampleConvEncoder(nn.Module):
    """``depth`` stride-2 conv blocks; local tokens are the last map's cells.

    The image-encoder contract (see :class:`place_bench.model.outputs.ImageFeatures`):
    ``feature_dim`` and ``local_dim`` attributes give the widths the model's
    projection heads are built for, and ``forward`` maps (B, 3, H, W) images to
    ``ImageFeatures`` with the global embedding (B, width), the local tokens
    (B, N, width) in row-major order and their grid (H / 2**depth, W / 2**depth).
    """

    def __init__(self, width: int = 16, depth: int = 3):
        super().__init__()
        blocks, channels = [], 3
        for _ in range(depth):
            blocks += [nn.Conv2d(channels, width, 3, stride=2, padding=1), nn.ReLU()]
            channels = width
        self.body = nn.Sequential(*blocks)
        self.feature_dim = width
        self.local_dim = width

    def forward(self, images: torch.Tensor) -> ImageFeatures:
        fmap = self.body(images)
        local = fmap.flatten(2).transpose(1, 2)
        return ImageFeatures(local.mean(1), local, (fmap.shape[2], fmap.shape[3]), None)
