"""An out-of-tree PLACE-Bench plugin: a pretraining method (SigLIP's sigmoid loss) and
a small convolutional image encoder.

The package is found through its entry point in the ``place_bench`` group
(``pyproject.toml``); PLACE-Bench imports this module and calls its one hook,
:func:`place_bench_register`, which puts the components into the suite's
registries. Configs then name them by ``type``.
"""

from place_bench.hookspecs import hookimpl

from .encoder import ExampleConvEncoder
from .siglip import SigmoidPairLoss

__all__ = ["ExampleConvEncoder", "SigmoidPairLoss", "place_bench_register"]


@hookimpl
def place_bench_register(registrar):
    """Register ``image_encoder/example_conv`` and ``objective/siglip``."""
    registrar.add("image_encoder", "example_conv", ExampleConvEncoder)
    registrar.add("objective", "siglip", SigmoidPairLoss)
