"""Suite checkpoints (safetensors + card) and mmengine checkpoints under weights_only."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from place_bench import api
from place_bench.config import to_plain
from place_bench.model.checkpoint import (
    build_model_from_checkpoint,
    card_path,
    load_checkpoint,
    read_card,
    save_checkpoint,
)
from place_bench.model.weights import PartialLoadError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def tiny_checkpoint(tmp_path):
    torch.manual_seed(0)
    cfg = api.load_config("eval/embed_tiny")
    model = api.build_model(cfg).eval()
    path = save_checkpoint(model, tmp_path / "tiny.safetensors", to_plain(cfg), data_fingerprint="abc123")
    return model, path


def test_round_trip_gives_identical_embeddings(tiny_checkpoint):
    model, path = tiny_checkpoint
    images = torch.randn(2, 3, 64, 64)
    reports = ["No effusion.", "Mild left basilar atelectasis. No pneumothorax."]
    torch.manual_seed(123)  # a different seed: nothing may come from fresh initialisation
    loaded, card = build_model_from_checkpoint(path)
    loaded.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded.embed_image(images), model.embed_image(images), rtol=0, atol=0)
        torch.testing.assert_close(loaded.embed_text(reports), model.embed_text(reports), rtol=0, atol=0)
    assert card["components"]["image_encoder"] == "timm"
    assert card["components"]["text_encoder"] == "hf_text"
    assert card["data_fingerprint"] == "abc123"
    assert card["config"]["model"]["embed_dim"] == 32
    assert card["code_version"].startswith("0.1.0")
    assert "torch" in card["packages"]


def test_card_is_also_embedded_in_the_weights(tiny_checkpoint):
    _, path = tiny_checkpoint
    sidecar = json.loads(card_path(path).read_text())
    card_path(path).unlink()
    embedded = read_card(path)
    assert embedded["config"] == sidecar["config"]
    assert "weights_sha256" not in embedded


def rewrite_without(path: Path, drop_prefix: str) -> Path:
    from safetensors.torch import load_file, save_file

    state = load_file(str(path))
    kept = {k: v for k, v in state.items() if not k.startswith(drop_prefix)}
    assert len(kept) < len(state)
    out = path.with_name("partial.safetensors")
    save_file(kept, str(out))
    card = json.loads(card_path(path).read_text())
    card.pop("weights_sha256")
    card_path(out).write_text(json.dumps(card))
    return out


def test_a_checkpoint_missing_encoder_keys_is_refused(tiny_checkpoint):
    _, path = tiny_checkpoint
    partial = rewrite_without(path, "image_encoder.model.blocks.1.")
    with pytest.raises(PartialLoadError, match=r"refusing a partial load.*missing keys \(image_encoder\.model\.blocks\.1\."):
        build_model_from_checkpoint(partial)


def test_an_image_encoder_from_a_suite_checkpoint_loads_strictly(tiny_checkpoint):
    from place_bench import registry as registries

    model, path = tiny_checkpoint
    cfg = dict(to_plain(api.load_config("eval/embed_tiny")).get("model")["image_encoder"])
    encoder = registries.build("image_encoder", dict(cfg, pretrained_path=str(path))).eval()
    images = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(encoder(images).global_embedding, model.image_encoder(images).global_embedding)
    partial = rewrite_without(path, "image_encoder.model.patch_embed.")
    with pytest.raises(PartialLoadError, match="patch_embed"):
        registries.build("image_encoder", dict(cfg, pretrained_path=str(partial)))


def test_a_changed_weights_file_fails_the_hash(tiny_checkpoint):
    _, path = tiny_checkpoint
    blob = bytearray(path.read_bytes())
    blob[-1] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(PartialLoadError, match="SHA-256"):
        load_checkpoint(path)


def test_checkpoint_cli_init_and_show(run_cli, tmp_path):
    out = tmp_path / "init.safetensors"
    result = run_cli("checkpoint", "init", "eval/embed_tiny", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert out.is_file() and card_path(out).is_file()
    shown = run_cli("checkpoint", "show", str(out))
    assert shown.returncode == 0, shown.stderr
    assert '"image_encoder": "timm"' in shown.stdout and "image_encoder:" in shown.stdout


RUNNER_SCRIPT = r'''
import sys, torch
from torch import nn
from mmengine.model import BaseModel
from mmengine.runner import Runner

class Toy(BaseModel):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)
    def forward(self, x, y, mode="loss"):
        return {"loss": ((self.linear(x).squeeze(-1) - y) ** 2).mean()}

data = [dict(x=torch.randn(2), y=torch.randn(())) for _ in range(8)]
def runner(work_dir, max_iters, resume):
    return Runner(
        model=Toy(), work_dir=work_dir,
        train_dataloader=dict(dataset=data, sampler=dict(type="DefaultSampler", shuffle=False), batch_size=2,
                              collate_fn=dict(type="default_collate")),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(checkpoint=dict(type="CheckpointHook", interval=2, by_epoch=False)),
        resume=resume, default_scope="mmengine",
    )

work_dir, mode = sys.argv[1], sys.argv[2]
if mode == "train":
    runner(work_dir, 2, False).train()
else:
    if mode == "resume-registered":
        from place_bench.model.checkpoint import register_mmengine_safe_globals
        register_mmengine_safe_globals()
    r = runner(work_dir, 4, True)
    r.train()
    print("resumed-to", r.iter)
'''


def test_mmengine_checkpoints_resume_under_weights_only_with_exact_safe_globals(tmp_path):
    script = tmp_path / "runner.py"
    script.write_text(RUNNER_SCRIPT)
    env_run = lambda mode: subprocess.run(  # noqa: E731
        [sys.executable, str(script), str(tmp_path / "work"), mode],
        capture_output=True, text=True, timeout=300,
    )
    assert env_run("train").returncode == 0
    assert torch.__version__ >= "2.6"
    unregistered = env_run("resume-unregistered")
    assert unregistered.returncode != 0
    assert "weights_only" in unregistered.stderr or "WeightsUnpickler" in unregistered.stderr
    registered = env_run("resume-registered")
    assert registered.returncode == 0, registered.stderr[-2000:]
    assert "resumed-to 4" in registered.stdout


def test_the_getattr_stand_in_refuses_anything_but_history_buffer_statistics():
    import pickle

    import numpy as np
    from mmengine.logging import HistoryBuffer

    from place_bench.model.checkpoint import _history_buffer_statistic

    assert _history_buffer_statistic(HistoryBuffer, "mean") is HistoryBuffer.mean
    with pytest.raises(pickle.UnpicklingError, match="tofile"):
        _history_buffer_statistic(np.zeros(2), "tofile")
    with pytest.raises(pickle.UnpicklingError, match="__init__"):
        _history_buffer_statistic(HistoryBuffer, "__init__")
