"""A small convolutional image encoder, as a third-party plugin would ship one."""

import torch
from torch import nn

from place_bench.hookspecs import hookimpl
from place_bench.model.outputs import ImageFeatures


class ExampleConvEncoder(nn.Module):
    """``depth`` stride-2 conv blocks; local tokens are the last map's cells.

    Input (B, 3, H, W); output grid (H / 2**depth, W / 2**depth).
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


@hookimpl
def place_bench_register(registrar):
    registrar.add("image_encoder", "example_conv", ExampleConvEncoder)
