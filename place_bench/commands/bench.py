"""``place-bench bench``: run a benchmark config (methods x tasks x datasets) end to end, resumably."""

from __future__ import annotations

import sys


def add_bench_parser(sub) -> None:
    from place_bench.cli import _cfg_options_argument

    p = sub.add_parser("bench", help="run a benchmark config: data, pretraining, every evaluation, the leaderboard "
                                     "(finished units are skipped)")
    p.add_argument("config", help="a benchmark config (with a 'benchmark' section), e.g. benchmarks/tiny_synthetic")
    p.add_argument("--dry-run", action="store_true", help="print the plan (what is done, what is left) and exit")
    p.add_argument("--force", action="store_true", help="recompute units whose records / checkpoints exist")
    p.add_argument("--retrain-stale", action="store_true",
                   help="retrain methods whose checkpoint was trained with another config than the one now "
                        "(the old run folder is moved aside to <folder>.stale-<time>, its records to "
                        "<results>/.superseded/)")
    _cfg_options_argument(p)
    p.set_defaults(func=cmd_bench)


def cmd_bench(args) -> int:
    from place_bench import api
    from place_bench.engine import bench

    cfg = api.load_config(args.config, args.cfg_options, args.plugin_dir, strict=args.strict)
    plan = bench.plan(cfg, force=args.force, plugin_dirs=args.plugin_dir)
    print(bench.format_plan(plan), flush=True)
    if args.dry_run:
        return 0
    fancy = sys.stdout.isatty()
    try:
        summary = bench.run(plan, plugin_dirs=args.plugin_dir, fancy=fancy, retrain_stale=args.retrain_stale)
    except bench.StaleCheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if fancy:
        from rich.console import Console

        Console().print(bench.format_summary(summary, fancy=True))
    print(bench.format_summary(summary))
    return 0 if summary.ok else 1
