"""Pretraining throughput: the suite's engine against a bare PyTorch loop, in one run.

Both train the same model (same config, same seed), the same objective and the
same batches (same dataset, collate and batch size) with AdamW and gradient
clipping; only the loop differs (mmengine Runner with its hooks, logging and
checkpointing vs a plain ``for`` loop). Iterations after a warm-up are timed and
reported as image-report pairs per second, with their ratio (target >= 0.95).

    python benchmarks/pretrain_throughput.py [--config pretrain/convirt_synthetic] [--iters 30] [--batch-size 8]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from mmengine.hooks import Hook  # noqa: E402


class IterClock(Hook):
    """Records the wall time at the end of every training iteration."""

    def __init__(self):
        self.stamps: list[float] = []

    def before_train(self, runner) -> None:
        self.stamps.append(time.perf_counter())

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.stamps.append(time.perf_counter())


def steady_pairs_per_second(stamps: list[float], batch_size: int, warmup: int) -> tuple[float, float]:
    """Pairs/s over all iterations after ``warmup`` (total pairs / total time, so pauses
    such as epoch-boundary stalls count), and the spread of single iterations (IQR / median)."""
    durations = [b - a for a, b in zip(stamps, stamps[1:])][warmup:]
    overall = batch_size * len(durations) / sum(durations)
    rates = sorted(batch_size / d for d in durations)
    q1, q3 = rates[len(rates) // 4], rates[(3 * len(rates)) // 4]
    return overall, (q3 - q1) / statistics.median(rates)


def suite_run(cfg_name: str, manifest: Path, iters: int, batch_size: int, work: Path) -> list[float]:
    from place_bench import api
    from place_bench.engine.pretrain import build_pretrain_runner

    cfg = api.load_config(cfg_name, {
        "data.train.source": None, "data.train.manifest": str(manifest), "data.batch_size": batch_size, "train_cfg.max_iters": iters,
        "pretrain.checkpoint_interval": iters, "pretrain.log_interval": iters,
    })
    runner = build_pretrain_runner(cfg, work_dir=work)
    clock = IterClock()
    runner.register_hook(clock)
    runner.train()
    return clock.stamps


def bare_run(cfg_name: str, manifest: Path, iters: int, batch_size: int) -> list[float]:
    from mmengine.runner import set_random_seed

    from place_bench import api
    from place_bench.config import to_plain
    from place_bench.data.pairs import ImageReportDataset, PairCollate
    from place_bench.engine.pretrain import resolve_source

    cfg = api.load_config(cfg_name, {"data.train.source": None, "data.train.manifest": str(manifest)})
    data = to_plain(cfg.data)
    set_random_seed(int(cfg.get("seed", 0)))
    model = api.build_model(cfg).train()
    dataset = ImageReportDataset(pipeline=data.get("pipeline"), seed=int(cfg.get("seed", 0)), **resolve_source(data["train"]))
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=True, drop_last=True, collate_fn=PairCollate(model.tokenize)
    )
    optim = to_plain(cfg.optim_wrapper)
    opt_cfg = dict(optim["optimizer"])
    opt_cfg.pop("type")
    optimizer = torch.optim.AdamW(model.parameters(), **opt_cfg)
    max_norm = optim.get("clip_grad", {}).get("max_norm")
    stamps = [time.perf_counter()]
    done = 0
    while done < iters:
        for batch in loader:
            losses = model.losses(batch["images"], batch["reports"])
            loss = sum(losses.values())
            optimizer.zero_grad()
            loss.backward()
            if max_norm:
                torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
            optimizer.step()
            stamps.append(time.perf_counter())
            done += 1
            if done == iters:
                break
    return stamps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="pretrain/convirt_synthetic")
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--pairs", type=int, default=64, help="synthetic training pairs to generate")
    args = parser.parse_args()

    from place_bench.plugins.datasets.synthetic.pairs_manifest import write_pairs_manifest

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        manifest = write_pairs_manifest(tmp / "data", n_train=args.pairs, n_test=0, image_px=80)
        # Alternate the order so neither loop always runs on a warmer machine.
        bare = bare_run(args.config, manifest, args.iters, args.batch_size)
        suite = suite_run(args.config, manifest, args.iters, args.batch_size, tmp / "work")
        bare2 = bare_run(args.config, manifest, args.iters, args.batch_size)
    bare_rate, bare_spread = steady_pairs_per_second(bare + [], args.batch_size, args.warmup)
    bare_rate2, _ = steady_pairs_per_second(bare2, args.batch_size, args.warmup)
    suite_rate, suite_spread = steady_pairs_per_second(suite, args.batch_size, args.warmup)
    bare_mean = (bare_rate + bare_rate2) / 2
    print(f"config {args.config}, batch {args.batch_size}, {args.iters} iterations ({args.warmup} warm-up), "
          f"torch threads {torch.get_num_threads()}")
    print(f"bare PyTorch loop : {bare_mean:8.2f} pairs/s (runs {bare_rate:.2f} and {bare_rate2:.2f}; IQR/median {bare_spread:.2f})")
    print(f"suite engine      : {suite_rate:8.2f} pairs/s (IQR/median {suite_spread:.2f})")
    print(f"ratio suite / bare: {suite_rate / bare_mean:.3f} (target >= 0.95)")


if __name__ == "__main__":
    main()
