"""Where do PLACE's pathology queries look? Attention mass on the synthetic lesion.

The synthetic world knows where each finding is (``study.targets.mask(kind)``). For test
studies with exactly one finding that has a drawn region, :func:`measure_localization`
runs the model on the frontal image and its report, takes the query whose V-POR best
matches the report sentence naming the finding (``select="finding"``; ``"any"`` = the
best match to any sentence), and measures the share of that query's cross-attention
that lands on the lesion: grid cells weighted by the fraction of their pixels inside the
latent's mask, after the same letterbox-and-crop as the image. A uniform map puts
exactly the covered-area fraction there; a study is a *hit* when the query's share is
larger than that.

Also reported, for fairness:

* ``ratio``: share / uniform share, averaged over studies (1 = no better than uniform);
* ``all_queries``: the same share for the mean map of *all* queries — a control for a
  query-agnostic spatial prior (e.g. "look at the thorax, not the background"): if the
  matched query beats it, its attention is specific to the finding;
* a per-finding breakdown (the findings differ wildly in size: the heart of
  cardiomegaly covers ~8 % of the crop, a nodule or a plate atelectasis < 0.3 %, i.e.
  less than one 8 px cell of the 64 px crop).

Studies whose lesion falls outside the centre crop (uniform share 0, which no map can
beat) are left out and counted in ``outside``.

Used by ``benchmarks/place_localization.py`` and ``tests/integration/test_place_localization.py``.
Nothing here is registered.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import torch

MAPS = ("last", "mean")


@dataclass
class StudyReading:
    """One study: finding kind, the matched query's share on the lesion, the uniform share,
    and the share of the mean map of all queries."""

    kind: str
    share: float
    uniform: float
    all_queries: float

    @property
    def hit(self) -> bool:
        return self.share > self.uniform


@dataclass
class LocalizationResult:
    rows: list[StudyReading] = field(default_factory=list)
    outside: int = 0  # lesion outside the crop: left out
    unnamed: int = 0  # no kept sentence names the finding (select="finding"): left out

    @property
    def studies(self) -> int:
        return len(self.rows)

    @property
    def hits(self) -> int:
        return sum(r.hit for r in self.rows)

    @property
    def hit_rate(self) -> float:
        return self.hits / max(1, self.studies)

    @property
    def mean_share(self) -> float:
        return float(np.mean([r.share for r in self.rows])) if self.rows else float("nan")

    @property
    def mean_uniform(self) -> float:
        return float(np.mean([r.uniform for r in self.rows])) if self.rows else float("nan")

    @property
    def mean_ratio(self) -> float:
        return float(np.mean([r.share / r.uniform for r in self.rows])) if self.rows else float("nan")

    @property
    def all_queries_hit_rate(self) -> float:
        return sum(r.all_queries > r.uniform for r in self.rows) / max(1, self.studies)

    @property
    def all_queries_ratio(self) -> float:
        return float(np.mean([r.all_queries / r.uniform for r in self.rows])) if self.rows else float("nan")

    def by_kind(self) -> dict[str, "LocalizationResult"]:
        groups: dict[str, LocalizationResult] = defaultdict(LocalizationResult)
        for r in self.rows:
            groups[r.kind].rows.append(r)
        return dict(sorted(groups.items()))

    def summary(self) -> str:
        return (
            f"beats a uniform map on {self.hit_rate:.1%} of {self.studies} studies; mean share on the lesion "
            f"{self.mean_share:.4f} vs uniform {self.mean_uniform:.4f} (mean ratio {self.mean_ratio:.2f}); "
            f"all-query mean map: {self.all_queries_hit_rate:.1%}, ratio {self.all_queries_ratio:.2f}"
        )


def lesion_studies(count: int, image_px: int, seed: int = 7, split: str = "test"):
    """Up to ``count`` (study, mask) pairs of synthetic studies with exactly one finding
    that has a drawn region (native-resolution bool mask)."""
    from place_bench.plugins.datasets.synthetic import generate_study

    found, index = [], 0
    while len(found) < count and index < 50 * count:
        study = generate_study(seed, split, index, image_px, with_lateral=False)
        index += 1
        findings = study.latent.findings
        if len(findings) != 1:
            continue
        mask = study.targets.mask(findings[0].kind)
        if mask.any():
            found.append((study, mask))
    return found


def grid_cover(lesion: np.ndarray, grid: tuple[int, int]) -> torch.Tensor:
    """(gh * gw,) fraction of each grid cell's pixels inside ``lesion`` (H, W), row-major.
    The grid must divide the crop (a ViT's patches; a CNN stage's cells)."""
    gh, gw = grid
    h, w = lesion.shape
    if h % gh or w % gw:
        raise ValueError(f"grid {grid} does not divide the {h}x{w} crop")
    cover = lesion.astype(np.float32).reshape(gh, h // gh, gw, w // gw).mean((1, 3))
    return torch.from_numpy(cover).flatten()


def _pcma(model):
    """The model's PLACE PCMA objective (the one that can ``observe``)."""
    return next(o for o in model.objectives if hasattr(o, "observe"))


def _pretraining_text(study) -> str:
    """What pretraining reads of a study's MIMIC-style report (MGCA caption rule)."""
    from place_bench.data.pairs import caption

    report = study.reports["mimic"]
    return caption(dict(report.sections, report=report.text))


def measure_localization(model, studies, pipeline: dict, select: str = "finding", attention: str = "last") -> LocalizationResult:
    """Read the model's PLACE queries on ``studies`` (from :func:`lesion_studies`).

    :param pipeline: the config's ``data.pipeline`` (eval transform: centre crop).
    :param select: ``"finding"`` (query best matching a sentence naming the finding) or
        ``"any"`` (query best matching any sentence).
    :param attention: ``"last"`` = the last VPOE block's map (``observe()["attention"]``),
        ``"mean"`` = the mean of every block's map.
    """
    from place_bench.data.images import CXRTransform
    from place_bench.data.loaders import warp_mask

    if select not in ("finding", "any"):
        raise ValueError(f"select must be 'finding' or 'any', got {select!r}")
    if attention not in MAPS:
        raise ValueError(f"attention must be one of {MAPS}, got {attention!r}")
    transform = CXRTransform(**dict(pipeline, train=False))
    pcma = _pcma(model)
    result = LocalizationResult()
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for study, mask in studies:
            image, geometry = transform.apply(study.frontal)
            lesion = warp_mask(mask, geometry)
            report = study.reports["mimic"]
            out = model.pair_outputs(image[None], [_pretraining_text(study)])
            seen = pcma.observe(out)
            cover = grid_cover(lesion, tuple(seen["grid"]))
            uniform = float(cover.mean())
            if uniform == 0.0:
                result.outside += 1
                continue
            scores = seen["tpor"][0] @ seen["vpor"][0].T  # (S, Q)
            valid = seen["tpor_mask"][0].clone()
            kind = study.latent.findings[0].kind
            if select == "finding":
                naming = {" ".join(s.text.split()) for s in report.sentences if kind in s.kinds}
                kept = out.text.batch.sentences[0]
                valid &= torch.tensor([" ".join(t.split()) in naming for t in kept] + [False] * (len(valid) - len(kept)))
            if not valid.any():
                result.unnamed += 1
                continue
            query = int(scores[valid].max(0).values.argmax())
            maps = seen["attention"][0] if attention == "last" else seen["attentions"][:, 0].mean(0)  # (Q, N)
            maps = maps.float() / maps.float().sum(-1, keepdim=True)
            share = float(maps[query] @ cover)
            everyone = float(maps.mean(0) @ cover)
            result.rows.append(StudyReading(kind, share, uniform, everyone))
    model.train(was_training)
    return result


def query_similarity(model, studies, pipeline: dict) -> tuple[float, float]:
    """(mean, bound): the mean |cosine| between different queries' V-PORs of one image, over
    ``studies``, and the same mean for independent random directions of that dimension,
    sqrt(2 / (pi d)). Collapsed queries sit near 1; diverse ones below the bound."""
    from place_bench.data.images import CXRTransform

    transform = CXRTransform(**dict(pipeline, train=False))
    images = torch.stack([transform.apply(study.frontal)[0] for study, _ in studies])
    texts = [_pretraining_text(study) for study, _ in studies]
    pcma = _pcma(model)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        vpor = torch.nn.functional.normalize(pcma.observe(model.pair_outputs(images, texts))["vpor"].float(), dim=-1)
    model.train(was_training)
    n_queries, dim = vpor.shape[1:]
    off_diagonal = ~torch.eye(n_queries, dtype=torch.bool)
    mean = float((vpor @ vpor.transpose(1, 2)).abs()[:, off_diagonal].mean())
    return mean, float(np.sqrt(2 / (np.pi * dim)))


def pretrain_config(name: str = "pretrain/place_synthetic", iters: int | None = None, pairs: int | None = None, options=None):
    """Load a pretraining config for a localization run of ``iters`` iterations.

    Unlike a bare ``train_cfg.max_iters`` override, scheduler milestones that ended at the
    config's own ``max_iters`` are moved to ``iters``, so the cosine decay spans the run
    (``tiny_iters`` decays over 60 iterations; a 300-iteration run with only max_iters
    changed would spend 240 iterations at ``eta_min``).
    """
    from place_bench import api

    opts = dict(options or {})
    if pairs is not None:
        opts["data.train.source.n_train"] = int(pairs)
    cfg = api.load_config(name, opts)
    if iters is not None:
        old = int(cfg.train_cfg.max_iters)
        cfg.train_cfg.max_iters = int(iters)
        for sched in cfg.get("param_scheduler") or []:
            if not sched.get("by_epoch", True) and sched.get("end") == old:
                sched["end"] = int(iters)
        pretrain = cfg.get("pretrain") or {}
        pretrain.update(checkpoint_interval=int(iters))
        cfg.pretrain = pretrain
    return cfg
