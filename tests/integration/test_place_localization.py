"""The PLACE query-localization measurement (plugins/objectives/place/localization.py).

These pin the measuring function down (an oracle map scores every study, a uniform map
none); they do not pretrain. Whether pretraining makes the queries localize is measured
by ``benchmarks/place_localization.py`` and checked by the slow
``tests/integration/test_place_localizes.py``.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from place_bench.plugins.objectives.place.localization import (  # noqa: E402
    grid_cover,
    lesion_studies,
    measure_localization,
    pretrain_config,
)


def test_grid_cover_fraction_per_cell():
    lesion = np.zeros((8, 8), np.uint8)
    lesion[0:2, 0:1] = 1  # half of cell (0, 0) of a 4 x 4 grid of 2 px cells
    lesion[6:8, 6:8] = 1  # all of cell (3, 3)
    cover = grid_cover(lesion, (4, 4))
    assert cover.shape == (16,)
    assert cover[0] == pytest.approx(0.5) and cover[15] == pytest.approx(1.0)
    assert float(cover.sum()) == pytest.approx(1.5)
    with pytest.raises(ValueError):
        grid_cover(lesion, (3, 3))


def test_pretrain_config_stretches_the_schedule():
    cfg = pretrain_config("pretrain/place_synthetic", iters=300, pairs=64)
    assert cfg.train_cfg.max_iters == 300
    assert cfg.param_scheduler[-1]["end"] == 300  # tiny_iters decays over 60 otherwise
    assert cfg.param_scheduler[0]["end"] == 5  # warm-up untouched
    assert cfg.data.train.source.n_train == 64


@pytest.fixture(scope="module")
def setup():
    from mmengine.runner import set_random_seed

    from place_bench import api
    from place_bench.config import to_plain

    torch.set_num_threads(1)
    cfg = pretrain_config("pretrain/place_synthetic")
    pipeline = to_plain(cfg.data.pipeline)
    studies = lesion_studies(16, int(cfg.data.train.source.image_px))
    set_random_seed(0)
    return api.build_model(cfg), studies, pipeline


def _forced_attention(model, studies, pipeline, monkeypatch, kind: str):
    """Replace every query's map by the lesion cover (oracle) or a uniform map."""
    from place_bench.data.images import CXRTransform
    from place_bench.data.loaders import warp_mask

    transform = CXRTransform(**dict(pipeline, train=False))
    covers = iter([grid_cover(warp_mask(m, transform.apply(s.frontal)[1]), (8, 8)) for s, m in studies])
    pcma = next(o for o in model.objectives if hasattr(o, "observe"))
    real = type(pcma).observe.__get__(pcma)  # the unpatched method

    def observe(outputs):
        seen = dict(real(outputs))
        cover = next(covers)
        n = cover.numel()
        target = cover / cover.sum() if kind == "oracle" and cover.sum() > 0 else torch.full((n,), 1.0 / n)
        seen["attention"] = target.expand_as(seen["attention"]).clone()
        seen["attentions"] = target.expand_as(seen["attentions"]).clone()
        return seen

    monkeypatch.setattr(pcma, "observe", observe)


def test_measurement_untrained_model_is_near_uniform(setup):
    model, studies, pipeline = setup
    result = measure_localization(model, studies, pipeline)
    assert result.studies + result.outside + result.unnamed == len(studies)
    assert result.studies >= 8
    assert 0.7 < result.mean_ratio < 1.4  # random queries: about a uniform map
    assert set(result.by_kind()) <= {r.kind for r in result.rows}


@pytest.mark.parametrize("maps", ["last", "mean"])
def test_measurement_scores_an_oracle_and_not_a_uniform_map(setup, monkeypatch, maps):
    model, studies, pipeline = setup
    _forced_attention(model, studies, pipeline, monkeypatch, "oracle")
    oracle = measure_localization(model, studies, pipeline, attention=maps)
    assert oracle.hit_rate == 1.0 and oracle.mean_ratio > 5
    _forced_attention(model, studies, pipeline, monkeypatch, "uniform")
    uniform = measure_localization(model, studies, pipeline, attention=maps)
    assert uniform.hit_rate == 0.0 and uniform.mean_ratio == pytest.approx(1.0)
