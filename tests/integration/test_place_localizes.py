"""After a short synthetic pretraining, PLACE's best-matching query looks at the lesion.

Issue 5's check at the smallest scale where it shows (measured with
``benchmarks/place_localization.py``; below ~300 iterations the tiny model's image-report
matching has not started and the maps stay at the untrained level). The hit rate is the share
of single-finding test studies on which the query best matching the sentence that names the
finding puts more attention on the lesion than a uniform map would.

Marked ``slow`` (about 2.5 minutes on 2 cores) and left out of the default test command: the
margin over the untrained model is a few studies (measured 56.6 % vs 54.9 % of 113 with 2
threads, 61.1 % vs 54.9 % with 1), so the check is reported, not yet relied on. Run it with
``pytest -m slow``.
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.mark.slow
def test_pretrained_queries_beat_a_uniform_map_and_the_untrained_model(tmp_path):
    from mmengine.runner import set_random_seed

    from place_bench import api
    from place_bench.config import to_plain
    from place_bench.engine.pretrain import run_pretrain
    from place_bench.model.checkpoint import build_model_from_checkpoint
    from place_bench.plugins.objectives.place.localization import lesion_studies, measure_localization, pretrain_config

    cfg = pretrain_config("pretrain/place_synthetic", iters=300, pairs=512,
                          options={"data.train.source.cache_dir": str(tmp_path / "pairs"), "pretrain.log_interval": 100})
    pipeline = to_plain(cfg.data.pipeline)
    studies = lesion_studies(120, int(cfg.data.train.source.image_px))
    set_random_seed(int(cfg.get("seed", 0)))
    untrained = measure_localization(api.build_model(cfg), studies, pipeline)
    trained_model, _ = build_model_from_checkpoint(run_pretrain(cfg, work_dir=tmp_path / "run"))
    trained = measure_localization(trained_model, studies, pipeline)
    print(f"untrained: {untrained.summary()}\npretrained: {trained.summary()}")
    assert trained.studies >= 100
    assert trained.hit_rate > 0.5
    assert trained.hit_rate > untrained.hit_rate
    assert trained.mean_ratio > 1.0
