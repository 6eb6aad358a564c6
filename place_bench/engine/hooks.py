"""Runner hooks of the pretraining engine."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from mmengine.hooks import Hook


class RNGStateHook(Hook):
    """Saves the Python, NumPy and torch random states in every Runner checkpoint and
    restores them on resume, so a resumed run draws the same dropout masks and
    shuffles as an uninterrupted one."""

    priority = "VERY_LOW"

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint["rng_state"] = {
            "python": random.getstate(),
            "numpy": _numpy_state_as_tensors(),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get("rng_state")
        if not state:
            return
        random.setstate(state["python"])
        np.random.set_state(_numpy_state_from_tensors(state["numpy"]))
        torch.set_rng_state(state["torch"])
        if state["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])


def _numpy_state_as_tensors() -> tuple:
    """NumPy's legacy RNG state with its uint32 key array as a tensor, so the checkpoint
    needs no extra numpy dtype on the weights-only allow-list."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)


def _numpy_state_from_tensors(state: tuple) -> tuple:
    name, keys, pos, has_gauss, cached = state
    return name, keys.numpy().astype(np.uint32), pos, has_gauss, cached


class ObjectiveEpochHook(Hook):
    """Tells objectives with ``set_epoch(epoch)`` the current epoch before each iteration
    (MGCA freezes its prototypes during the first epoch). Iteration-based runs count
    epochs as ``iter // len(train_dataloader)``."""

    def before_train_iter(self, runner, batch_idx: int, data_batch: Any = None) -> None:
        model = runner.model.module if hasattr(runner.model, "module") else runner.model
        targets = [o for o in model.vlm.objectives if hasattr(o, "set_epoch")]
        if not targets:
            return
        if runner.train_loop.__class__.__name__ == "EpochBasedTrainLoop":
            epoch = runner.epoch
        else:
            epoch = runner.iter // max(1, len(runner.train_dataloader))
        for objective in targets:
            objective.set_epoch(epoch)


class ExportHook(Hook):
    """At the end of training, writes the suite checkpoint (safetensors + card) of the model."""

    priority = "LOWEST"

    def __init__(self, export: Callable[[Any], Path]):
        self.export = export

    def after_train(self, runner) -> None:
        if runner.rank == 0:
            model = runner.model.module if hasattr(runner.model, "module") else runner.model
            path = self.export(model.vlm)
            runner.logger.info(f"suite checkpoint: {path} (card: {path.with_suffix('.json')})")
