"""Pretraining on the mmengine Runner, end to end on tiny synthetic pairs."""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from place_bench import api
from place_bench.engine.pretrain import run_pretrain
from place_bench.model.checkpoint import build_model_from_checkpoint, read_card


def tiny_cfg(manifest: Path, iters: int, **extra):
    options = {
        "data.train.source": None, "data.train.manifest": str(manifest),
        "data.batch_size": 4,
        "train_cfg.max_iters": iters,
        "pretrain.checkpoint_interval": 2,
        # no dropout: the resume test compares weights bit for bit
        "model.text_encoder.config.hidden_dropout_prob": 0.0,
        "model.text_encoder.config.attention_probs_dropout_prob": 0.0,
        **extra,
    }
    return api.load_config("pretrain/convirt_synthetic", options)


def test_pretrain_exports_a_loadable_checkpoint_of_trained_weights(pairs_manifest, tmp_path):
    from mmengine.runner import set_random_seed

    cfg = tiny_cfg(pairs_manifest, 6)
    path = run_pretrain(cfg, work_dir=tmp_path / "run")
    card = read_card(path)
    assert card["components"]["objectives.0"] == "global_infonce"
    assert card["extra"]["pairs"] == 8 and card["data_fingerprint"]
    trained, _ = build_model_from_checkpoint(path)
    set_random_seed(0)  # the engine seeds the same way before building
    initial = api.build_model(cfg)
    for name in ("image_encoder", "text_encoder"):
        before = dict(getattr(initial, name).named_parameters())
        changed = [k for k, p in getattr(trained, name).named_parameters() if not torch.equal(p, before[k])]
        assert changed, f"no {name} parameter moved during training"
    logs = sorted((tmp_path / "run").rglob("scalars.json"))
    assert logs, "the Runner writes JSON scalar logs"
    assert list((tmp_path / "run").rglob("events.out.tfevents.*")), "and TensorBoard events"


def test_resume_continues_exactly(pairs_manifest, tmp_path):
    straight = run_pretrain(tiny_cfg(pairs_manifest, 4), work_dir=tmp_path / "straight")
    interrupted = tmp_path / "interrupted"
    run_pretrain(tiny_cfg(pairs_manifest, 2), work_dir=interrupted)
    resumed = run_pretrain(tiny_cfg(pairs_manifest, 4), work_dir=interrupted, resume=True)
    a, b = load_file(str(straight)), load_file(str(resumed))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)


def test_ddp_on_cpu_through_torchrun(pairs_manifest, tmp_path):
    """The same config under torchrun: two gloo processes, one exported checkpoint."""
    import subprocess
    import sys

    work = tmp_path / "ddp"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29561",
        "-m", "place_bench.cli", "pretrain", "pretrain/convirt_synthetic", "--work-dir", str(work),
        "--cfg-options", "data.train.source=None", f"data.train.manifest={pairs_manifest}", "data.batch_size=2",
        "train_cfg.max_iters=2",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=Path(__file__).parents[2])
    assert result.returncode == 0, result.stderr[-3000:]
    log = "\n".join(p.read_text() for p in work.rglob("*.log"))
    assert "Distributed training: True" in log and "'backend': 'gloo'" in log
    assert result.stdout.count("wrote ") == 1  # rank 0 alone reports and exports
    assert read_card(work / "model.safetensors")["extra"]["source"] == "pretrain"
