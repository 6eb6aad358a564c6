"""Runner settings shared by the downstream tasks that train on the mmengine Runner.

``cls_finetune``, ``seg`` (mmsegmentation) and ``det`` (mmdetection) run one Runner per unit,
quietly, seeded, without checkpoint files (the best state is kept by a hook in memory):
:func:`quiet_runner_settings` returns the Runner keyword arguments they share.
"""

from __future__ import annotations

from typing import Any

import torch


def quiet_runner_settings(log_interval: int, seed: int, log_level: str, default_scope: str) -> dict[str, Any]:
    """``default_hooks``, ``log_processor``, ``visualizer``, ``env_cfg``, ``randomness``,
    ``log_level`` and ``default_scope`` for a downstream unit's Runner: iteration-based logging
    every ``log_interval`` iterations, no checkpoint hook, gloo on CPU / nccl on GPU."""
    return dict(
        default_hooks=dict(
            runtime_info=dict(type="RuntimeInfoHook"),
            timer=dict(type="IterTimerHook"),
            logger=dict(type="LoggerHook", interval=int(log_interval), log_metric_by_epoch=False),
            param_scheduler=dict(type="ParamSchedulerHook"),
            checkpoint=None,
            sampler_seed=dict(type="DistSamplerSeedHook"),
        ),
        log_processor=dict(by_epoch=False),
        visualizer=dict(type="Visualizer", vis_backends=[dict(type="LocalVisBackend")]),
        env_cfg=dict(cudnn_benchmark=False, dist_cfg=dict(backend="nccl" if torch.cuda.is_available() else "gloo")),
        randomness=dict(seed=seed),
        log_level=log_level,
        default_scope=default_scope,
    )
