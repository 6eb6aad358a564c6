"""``place-bench demo``: the main job on the embedded default, as a benchmark run.

``place-bench demo [--out DIR] [--quick] [--cfg-options ...]`` loads ``benchmarks/demo_synthetic``
with every path under its ``work_dir`` (``work/demo``) moved to ``--out``, runs it with the
benchmark runner (:mod:`place_bench.engine.bench`: plan, then every pending unit, with the same
progress display as ``place-bench bench``; finished units are skipped on a re-run), writes PLACE's
per-query attention overlays for a few of the emulated MIMIC-CXR images into ``<out>/explain/``
(the ``place-bench explain`` machinery) and prints the leaderboard Markdown and where the HTML,
CSV and PNG files went. ``--quick`` keeps only PLACE and the random-init row (the tasks of the
former shell demo).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEMO_CONFIG = "benchmarks/demo_synthetic"
QUICK_METHODS = ("place", "random-init")
N_EXPLAIN = 3


def add_demo_parser(sub) -> None:
    from place_bench.cli import _cfg_options_argument

    p = sub.add_parser("demo", help="the demo on synthetic data (CPU, minutes): data, pretraining, every task, "
                                    "attention overlays, the leaderboard")
    p.add_argument("--out", default="work/demo", metavar="DIR", help="output folder (default: work/demo)")
    p.add_argument("--quick", action="store_true",
                   help=f"only the methods {', '.join(QUICK_METHODS)} (skips the MGCA / GLoRIA / ConVIRT / "
                        "ImageNet-init rows)")
    p.add_argument("--dry-run", action="store_true", help="print the plan and exit")
    _cfg_options_argument(p)
    p.set_defaults(func=cmd_demo)


def _move(value, old: str, new: str):
    """``value`` with every string path under ``old`` moved under ``new`` (recursively)."""
    if isinstance(value, dict):
        return {k: _move(v, old, new) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_move(v, old, new) for v in value)
    if isinstance(value, str) and (value == old or value.startswith(old + "/")):
        return new + value[len(old):]
    return value


def demo_config(out: str | Path, cfg_options=None, plugin_dirs=(), quick: bool = False, strict: bool = False):
    """The demo benchmark config with its work folder moved to ``out`` (a Config for ``bench.plan``)."""
    from mmengine.config import Config

    from place_bench import api
    from place_bench.config import to_plain

    cfg = api.load_config(DEMO_CONFIG, cfg_options or {}, plugin_dirs, strict=strict)
    plain = to_plain(cfg)
    bench = plain["benchmark"]
    old = str(bench.get("work_dir") or "work/demo").rstrip("/")
    bench = _move(bench, old, str(out).rstrip("/") or ".")
    if quick:
        bench["methods"] = [m for m in bench["methods"] if m.get("name") in QUICK_METHODS]
        tasks = []
        for entry in bench["tasks"]:
            if entry.get("methods"):
                entry["methods"] = [m for m in entry["methods"] if m in QUICK_METHODS]
                if not entry["methods"]:
                    continue
            tasks.append(entry)
        bench["tasks"] = tasks
    return Config({**plain, "benchmark": bench}, filename=getattr(cfg, "filename", None) or DEMO_CONFIG)


def write_overlays(checkpoint: Path, native_mimic: Path, out: Path, n: int = N_EXPLAIN) -> list[Path]:
    """PLACE's query-attention overlays (``explain``) for the first ``n`` emulated MIMIC images."""
    from place_bench.commands.explain import run_explain

    images = sorted(native_mimic.rglob("*.jpg"))[:n]
    written = []
    for image in images:
        report = image.parent.with_suffix(".txt")   # MIMIC: files/pXX/pNNN/sNNN/<dicom>.jpg + sNNN.txt
        if not report.is_file():
            continue
        folder = out / image.stem
        run_explain(argparse.Namespace(checkpoint=str(checkpoint), image=str(image),
                                       report=report.read_text(), out=str(folder), plugin_dir=()))
        written.append(folder)
    return written


def cmd_demo(args) -> int:
    from place_bench.engine import bench

    out = Path(args.out)
    cfg = demo_config(out, args.cfg_options, args.plugin_dir, quick=args.quick, strict=args.strict)
    plan = bench.plan(cfg, plugin_dirs=args.plugin_dir)
    print(bench.format_plan(plan), flush=True)
    if args.dry_run:
        return 0
    fancy = sys.stdout.isatty()
    # The demo's checkpoints are minutes of work: one trained by an older demo config is
    # moved aside and retrained rather than refused.
    summary = bench.run(plan, plugin_dirs=args.plugin_dir, fancy=fancy, retrain_stale=True)
    if fancy:
        from rich.console import Console

        Console().print(bench.format_summary(summary, fancy=True))
    print(bench.format_summary(summary), flush=True)

    ok = summary.ok
    place = plan.work_dir / "pretrain" / "place" / "model.safetensors"
    explain_dir = out / "explain"
    if place.is_file():
        print(f"\n+ explain: PLACE's query-attention overlays -> {explain_dir}", flush=True)
        try:
            folders = write_overlays(place, plan.work_dir / "native" / "mimic_cxr" / "files", explain_dir)
            print(f"overlays for {len(folders)} images: " + ", ".join(str(f) for f in folders))
        except Exception as exc:
            ok = False
            print(f"explain failed: {type(exc).__name__}: {exc}", file=sys.stderr)
    else:
        print(f"no PLACE checkpoint at {place}: no attention overlays", file=sys.stderr)

    md = [p for p in summary.leaderboard if p.suffix == ".md"]
    if md:
        print()
        print(md[0].read_text())
        others = [p for p in summary.leaderboard if p.suffix != ".md"]
        pngs = [p for p in others if p.suffix == ".png"]
        rest = [p for p in others if p.suffix != ".png"]
        if rest:
            print("leaderboard also in: " + ", ".join(str(p) for p in rest))
        if pngs:
            print(f"curves: {len(pngs)} PNG files in {pngs[0].parent}")
    print(f"\ndemo finished: outputs in {out}" + ("" if ok else " (with failures; see above)"))
    return 0 if ok else 1
