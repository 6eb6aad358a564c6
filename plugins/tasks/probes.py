"""``probes``: the synthetic world's pathology-level probes (datasets.md section 4.8).

A probe manifest (``synthetic_probe_<probe>``: laterality, negation, severity; written by
:mod:`place_bench.plugins.datasets.synthetic.probes_manifest`) holds two classes whose images
differ only in one pathology-level attribute (left vs right effusion, effusion present vs absent,
small vs large). Two readings, each a result variant:

* ``zeroshot``: the paired prompts ("left pleural effusion" vs "right pleural effusion"), scored
  as the ``zeroshot`` task does (raw arg-max ``accuracy`` primary, AUROC of the class scores);
  tests whether the *text* side carries the attribute and is aligned with the image side;
* ``linear``: a linear probe on frozen image features trained on the probe's ``train`` split and
  scored on ``test`` (the ``cls_linear`` protocol; probe sets have no validation split, so early
  stopping watches the training loss, i.e. training runs to ``max_epochs`` unless it plateaus);
  tests whether the *image* features carry it.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

from place_bench.engine.task import EvalContext, Task, Unit, UnitResult
from place_bench.hookspecs import hookimpl
from place_bench.plugins.tasks.linear_probe import LinearProbeTask
from place_bench.plugins.tasks.zeroshot import ZeroShotTask

VARIANTS = ("zeroshot", "linear")


class ProbeTask(Task):
    """Both probe readings; ``zeroshot`` / ``linear``: keyword arguments of the two sub-tasks."""

    name = "probes"
    needs = frozenset({"image", "text"})

    def __init__(self, variants: Sequence[str] = VARIANTS, zeroshot: dict | None = None, linear: dict | None = None,
                 n_resamples: int = 1000):
        unknown = [v for v in variants if v not in VARIANTS]
        if unknown:
            raise ValueError(f"probes: unknown variant(s) {unknown}; known: {list(VARIANTS)}")
        self.variants = list(variants)
        self.zeroshot = ZeroShotTask(**{"n_resamples": n_resamples, **(zeroshot or {}), "variant": "zeroshot"})
        linear_cfg = {"n_resamples": n_resamples, "uncertain": "zeros",
                      "splits": {"train": "train", "val": "train", "test": "test"}, **(linear or {})}
        self.linear = LinearProbeTask(**linear_cfg, variant="linear")

    def protocol(self) -> dict[str, Any]:
        return {"variants": self.variants, "zeroshot": self.zeroshot.protocol(), "linear": self.linear.protocol()}

    def units(self, fractions, seeds) -> list[Unit]:
        units: list[Unit] = []
        if "zeroshot" in self.variants:
            units += self.zeroshot.units(None, seeds)
        if "linear" in self.variants:
            units += self.linear.units(fractions or (1.0,), seeds)
        return units

    def run(self, ctx: EvalContext, units: Sequence[Unit]) -> Iterator[UnitResult]:
        if not ctx.dataset.name.startswith("synthetic_probe_"):
            raise ValueError(f"probes runs on synthetic probe manifests (synthetic_probe_*), not {ctx.dataset.name!r}")
        zeroshot = [u for u in units if u.variant == "zeroshot"]
        linear = [u for u in units if u.variant == "linear"]
        if zeroshot:
            yield from self.zeroshot.run(ctx, zeroshot)
        if linear:
            yield from self.linear.run(ctx, linear)


@hookimpl
def place_bench_register(registrar):
    registrar.add("task", "probes", ProbeTask)
