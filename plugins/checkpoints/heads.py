"""A projection head given layer by layer, so that a foreign head loads key for key."""

from __future__ import annotations

from torch import nn

from place_bench.hookspecs import hookimpl
from place_bench.plugins.encoders.projection import TokenwiseHead

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


class SequentialProjection(TokenwiseHead):
    """Layers in the order given; module ``i`` holds the state-dict keys ``layers.{i}.*``.

    Parameter-free layers keep their index, so the indices of a foreign ``nn.Sequential``
    carry over unchanged (MGCA's ``head.4`` is ``layers.4`` here).

    :param layers: specs, each one of ``"linear"`` / ``"linear:WIDTH"`` (to ``out_dim`` when no
        width is given), ``"linear_nobias[:WIDTH]"``, ``"batch_norm"``, ``"batch_norm_noaffine"``
        (running statistics only, as MGCA's output layer), ``"layer_norm"``, ``"relu"``,
        ``"gelu"``, ``"tanh"``. The last linear must end at ``out_dim``.
    :param in_dim, out_dim: filled by the model from its encoder width and ``embed_dim``.
    :param l2_normalize: return unit-length vectors.

    Input (..., in_dim) -> (..., out_dim); norms see every leading position as one sample.
    """

    def __init__(self, layers: list[str], in_dim: int | None = None, out_dim: int | None = None,
                 l2_normalize: bool = False):
        super().__init__()
        if in_dim is None or out_dim is None:
            raise ValueError("sequential_projection: in_dim and out_dim must be set (the model fills them)")
        modules: list[nn.Module] = []
        width = int(in_dim)
        for spec in layers:
            kind, _, size = str(spec).partition(":")
            if kind in ("linear", "linear_nobias"):
                new = int(size) if size else int(out_dim)
                modules.append(nn.Linear(width, new, bias=kind == "linear"))
                width = new
            elif kind == "batch_norm":
                modules.append(nn.BatchNorm1d(width))
            elif kind == "batch_norm_noaffine":
                modules.append(nn.BatchNorm1d(width, affine=False))
            elif kind == "layer_norm":
                modules.append(nn.LayerNorm(width))
            elif kind in ACTIVATIONS:
                modules.append(ACTIVATIONS[kind]())
            else:
                raise ValueError(f"sequential_projection: unknown layer {spec!r}")
        if width != int(out_dim):
            raise ValueError(f"sequential_projection: the layers end at width {width}, not out_dim={out_dim}")
        self.layers = nn.ModuleList(modules)
        self.in_dim, self.out_dim = int(in_dim), int(out_dim)
        self.l2_normalize = l2_normalize


@hookimpl
def place_bench_register(registrar):
    registrar.add("head", "sequential_projection", SequentialProjection)
