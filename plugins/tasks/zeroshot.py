"""``zeroshot``: prompt-based classification with the frozen joint space (datasets.md section 2.3).

For each class the prompts of its prompt set (:mod:`place_bench.plugins.tasks.prompts`: GLoRIA's
CheXpert vocabulary for the 5x200 sets, BenchX pneumonia + suite normal prompts for RSNA, the
paired prompts of the synthetic probes) are embedded with the text encoder; an image's class
score is the **maximum** over the class's prompts of the cosine similarity between the image and
prompt embeddings (GLoRIA's rule). All metrics are computed once over the whole evaluated split:

* ``accuracy`` (primary): raw arg-max over the class scores -- non-transductive;
* ``accuracy_znorm``: GLoRIA's transductive per-class z-normalization over the evaluated images
  before the arg-max (recomputed inside every bootstrap resample, since it depends on the set);
* ``f1_macro`` / ``f1_macro_znorm``: macro-F1 of the same two predictions;
* ``auroc_macro``: one-vs-rest macro AUROC of the raw class scores.

Targets: the manifest's ``class_index`` (5x200 sets, probes); a single-label multi-label manifest
(RSNA ``Pneumonia``) is read as class 1 = positive, class 0 = the prompt set's negative class.
The prompts used are stored in the result (``extra.prompts``); their sample is fixed by
``prompt_seed``.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import numpy as np

from place_bench.engine.task import EvalContext, Task, Unit, UnitResult
from place_bench.evaluation import metrics as M
from place_bench.hookspecs import hookimpl
from place_bench.plugins.tasks._embedding import embed_images, embed_texts
from place_bench.plugins.tasks._scoring import with_ci


def class_scores(image_emb: np.ndarray, prompt_emb: dict[str, np.ndarray]) -> np.ndarray:
    """``(N, C)`` max-over-prompts cosine similarity; ``prompt_emb`` in class order, each ``(P_c, D)``;
    embeddings are unit length, so the dot product is the cosine."""
    return np.stack([(image_emb @ e.T).max(axis=1) for e in prompt_emb.values()], axis=1)


def znorm_accuracy(scores: np.ndarray, targets: np.ndarray) -> float:
    return M.accuracy(M.znormalize_per_class(scores), targets)


class ZeroShotTask(Task):
    """Zero-shot classification; see the module docstring.

    :param split: the evaluated split (5x200 manifests hold only ``test``).
    :param n_prompts: prompts sampled per class from an attribute vocabulary (fixed lists are
        used whole); :param prompt_seed: the sample's seed; :param procedure: ``"suite"`` or
        ``"gloria"`` sampling (see ``prompts.generate_class_prompts``).
    :param prompts: ``{class_name: [prompt, ...]}`` replacing the dataset's prompt set.
    """

    name = "zeroshot"
    needs = frozenset({"image", "text"})

    def __init__(self, split: str = "test", n_prompts: int | None = 5, prompt_seed: int = 6, procedure: str = "suite",
                 prompts: dict | None = None, pipeline: dict | None = None, batch_size: int = 32,
                 n_resamples: int = 1000, variant: str | None = None):
        self.split, self.n_prompts, self.prompt_seed, self.procedure = split, n_prompts, int(prompt_seed), procedure
        self.prompts = {str(k): list(v) for k, v in prompts.items()} if prompts else None
        self.pipeline = None if pipeline is None else dict(pipeline)
        self.batch_size, self.n_resamples, self.variant = int(batch_size), int(n_resamples), variant

    def protocol(self) -> dict[str, Any]:
        return {"split": self.split, "n_prompts": self.n_prompts, "prompt_seed": self.prompt_seed,
                "procedure": self.procedure, "scoring": "max over prompts of cosine; raw and per-class z-normalized",
                "pipeline": self.pipeline}

    def units(self, fractions, seeds) -> list[Unit]:
        return [Unit(None, u.seed, self.variant) for u in super().units(None, seeds)]

    def class_prompts(self, dataset_name: str, class_names: Sequence[str] | None) -> dict[str, list[str]]:
        if self.prompts is not None:
            return self.prompts
        from place_bench.plugins.tasks.prompts import prompts_for

        return prompts_for(dataset_name, class_names, self.n_prompts, self.prompt_seed, self.procedure)

    def _data(self, ctx: EvalContext):
        """(dataset, targets (N,) int, class names in target order)."""
        from place_bench.data.loaders import ClassificationDataset

        pipeline = dict(ctx.pipeline) if self.pipeline is None else self.pipeline
        data = ClassificationDataset(ctx.dataset.manifest, ctx.dataset.root, split=self.split, pipeline=pipeline)
        if data.target_kind == "multiclass":
            return data, data.targets.astype(np.int64), list(data.class_names)
        if data.targets.shape[1] != 1:
            raise ValueError(f"{ctx.dataset.manifest}: zero-shot needs class_index or a single binary label; "
                             f"it has labels {data.label_names}")
        from place_bench.plugins.tasks.prompts import PROMPT_SETS

        names = list(PROMPT_SETS[ctx.dataset.name].class_names) if ctx.dataset.name in PROMPT_SETS else None
        if names is None or len(names) != 2:
            raise ValueError(f"dataset {ctx.dataset.name!r}: a binary label needs a two-class prompt set")
        return data, data.targets[:, 0].astype(np.int64), names

    def run(self, ctx: EvalContext, units: Sequence[Unit]) -> Iterator[UnitResult]:
        data, targets, class_names = self._data(ctx)
        prompts = self.class_prompts(ctx.dataset.name, class_names)
        if list(prompts) != list(class_names):
            raise ValueError(f"prompt classes {list(prompts)} do not match the dataset's classes {class_names}")
        images, ids = embed_images(ctx.model, data, self.batch_size, ctx.device)
        prompt_emb = {c: embed_texts(ctx.model, p, device=ctx.device) for c, p in prompts.items()}
        scores = class_scores(images, prompt_emb)
        n_classes = len(class_names)
        for unit in units:
            boot = dict(n_resamples=self.n_resamples, seed=unit.seed)
            metrics = {
                "accuracy": with_ci(M.accuracy, scores, targets, **boot),
                "accuracy_znorm": with_ci(znorm_accuracy, scores, targets, **boot),
                "f1_macro": with_ci(lambda s, t: M.macro_f1(s, t, n_classes), scores, targets, **boot),
                "f1_macro_znorm": with_ci(lambda s, t: M.macro_f1(M.znormalize_per_class(s), t, n_classes),
                                          scores, targets, **boot),
            }
            extra: dict[str, Any] = {"prompts": prompts, "class_names": class_names,
                                     "class_counts": np.bincount(targets, minlength=n_classes).tolist()}
            try:
                metrics["auroc_macro"] = with_ci(M.auroc, scores, targets, **boot)
            except ValueError as exc:
                extra["auroc_macro_error"] = str(exc)
            yield UnitResult(unit, metrics, "accuracy", n_test=len(targets), extra=extra, item_ids=list(ids),
                             predictions={"scores": scores, "targets": targets})


@hookimpl
def place_bench_register(registrar):
    registrar.add("task", "zeroshot", ZeroShotTask)
