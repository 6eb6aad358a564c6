"""``retrieval``: full-pool image-to-text and text-to-image retrieval (datasets.md section 2.4).

The pool is one split of a 5xN manifest (MIMIC-5x200 in the suite): every image with a
non-empty report text (the pretraining caption: impression + findings, ``text`` selects
another field) and its class. Every image is ranked against **all** reports of the pool and
every report against all images (never within a batch), by cosine similarity in the joint
space; ties keep pool order. A retrieved item is relevant when it has the query's class.

Metrics (means over queries, each with a bootstrap interval resampling queries):
``i2t_precision@K``, ``i2t_hit@K``, ``t2i_precision@K``, ``t2i_hit@K`` for K in ``ks``
(default 1, 5, 10, 100: GLoRIA's 5/10/100 and BenchX's 1/5/10). Primary: ``i2t_precision@5``.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import numpy as np

from place_bench.engine.task import EvalContext, Task, Unit, UnitResult
from place_bench.evaluation.metrics import per_query_retrieval
from place_bench.hookspecs import hookimpl
from place_bench.plugins.tasks._embedding import embed_images, embed_texts
from place_bench.plugins.tasks._scoring import with_ci


class RetrievalTask(Task):
    """Full-pool retrieval; see the module docstring.

    :param text: the report text of a pool item (``impression_findings`` = the pretraining
        caption, or ``impression``, ``findings``, ``report``).
    """

    name = "retrieval"
    needs = frozenset({"image", "text"})

    def __init__(self, split: str = "test", ks: Sequence[int] = (1, 5, 10, 100), text: str = "impression_findings",
                 primary_metric: str = "i2t_precision@5", pipeline: dict | None = None, batch_size: int = 32,
                 n_resamples: int = 1000, variant: str | None = None):
        self.split, self.ks, self.text, self.primary = split, [int(k) for k in ks], text, primary_metric
        self.pipeline = None if pipeline is None else dict(pipeline)
        self.batch_size, self.n_resamples, self.variant = int(batch_size), int(n_resamples), variant

    def protocol(self) -> dict[str, Any]:
        return {"split": self.split, "ks": self.ks, "text": self.text, "pool": "whole split, full ranking",
                "relevance": "same class", "pipeline": self.pipeline}

    def units(self, fractions, seeds) -> list[Unit]:
        return [Unit(None, u.seed, self.variant) for u in super().units(None, seeds)]

    def _pool(self, ctx: EvalContext):
        from place_bench.data.loaders import ClassificationDataset
        from place_bench.data.manifest import iter_manifest
        from place_bench.data.pairs import caption

        pipeline = dict(ctx.pipeline) if self.pipeline is None else self.pipeline
        data = ClassificationDataset(ctx.dataset.manifest, ctx.dataset.root, split=self.split, pipeline=pipeline,
                                     target="multiclass")
        columns = ["sample_id", "report", "findings", "impression"]
        texts = {r["sample_id"]: caption(r, self.text) for r in iter_manifest(ctx.dataset.manifest, columns=columns)}
        keep = [i for i, r in enumerate(data.rows) if texts.get(r["sample_id"])]
        dropped = len(data.rows) - len(keep)
        data.rows = [data.rows[i] for i in keep]
        data.targets = data.targets[keep]
        return data, [texts[r["sample_id"]] for r in data.rows], dropped

    def run(self, ctx: EvalContext, units: Sequence[Unit]) -> Iterator[UnitResult]:
        data, texts, dropped = self._pool(ctx)
        if len(texts) < 2:
            raise ValueError(f"{ctx.dataset.manifest}: split {self.split!r} has {len(texts)} image-report pairs; "
                             "retrieval needs at least 2")
        labels = data.targets.astype(np.int64)
        images, ids = embed_images(ctx.model, data, self.batch_size, ctx.device)
        reports = embed_texts(ctx.model, texts, device=ctx.device)
        similarity = images @ reports.T
        per_query = {
            "i2t": per_query_retrieval(similarity, labels, labels, self.ks),
            "t2i": per_query_retrieval(similarity.T, labels, labels, self.ks),
        }
        for unit in units:
            metrics, per_item = {}, {}
            for direction, values in per_query.items():
                for name, per in values.items():
                    metrics[f"{direction}_{name}"] = with_ci(np.mean, per, n_resamples=self.n_resamples,
                                                             seed=unit.seed)
                    per_item[f"per_item__{direction}_{name}"] = per
            extra = {"pool_size": len(texts), "dropped_without_text": dropped,
                     "class_counts": np.bincount(labels).tolist(), "ks": self.ks}
            yield UnitResult(unit, metrics, self.primary, n_test=len(texts), extra=extra, item_ids=list(ids),
                             predictions=per_item)


@hookimpl
def place_bench_register(registrar):
    registrar.add("task", "retrieval", RetrievalTask)
