"""The ``place-bench`` command line: parse arguments, call :mod:`place_bench.api`, print."""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from typing import Sequence

# Offline by default: nothing may reach a model hub (set before transformers is imported).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def _cfg_options_argument(parser: argparse.ArgumentParser) -> None:
    from mmengine.config import DictAction

    parser.add_argument(
        "--cfg-options",
        nargs="+",
        action=DictAction,
        default={},
        metavar="KEY=VALUE",
        help="override config keys, e.g. model.embed_dim=256 'model.image_encoder.model_name=resnet50'",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="place-bench",
        description="PLACE-Bench: plugin-based, config-driven benchmark suite for chest X-ray "
        "vision-language pretraining.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument(
        "--plugin-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="load every plugin module in DIR (repeatable; also PLACE_BENCH_PLUGIN_PATH)",
    )
    parser.add_argument(
        "--strict", action="store_true", help="a plugin that fails to load is an error, not a warning"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("plugins", help="list registered components and the plugin providing each")
    p.add_argument("--kind", help="only this kind (image_encoder, text_encoder, head, objective, task, dataset, metric, "
                                  "checkpoint_adapter)")
    p.set_defaults(func=cmd_plugins)

    p = sub.add_parser("config", help="inspect configs")
    config_sub = p.add_subparsers(dest="config_command", metavar="SUBCOMMAND", required=True)
    show = config_sub.add_parser("show", help="print the merged, validated config")
    show.add_argument("config", help="a config file, or a name under configs/ (e.g. models/tiny_vit_bert)")
    _cfg_options_argument(show)
    show.set_defaults(func=cmd_config_show)

    p = sub.add_parser("checkpoint", help="create and inspect suite checkpoints")
    ckpt_sub = p.add_subparsers(dest="checkpoint_command", metavar="SUBCOMMAND", required=True)
    init = ckpt_sub.add_parser(
        "init", help="build the model of a config (with the local weights it names) and save it as a checkpoint"
    )
    init.add_argument("config")
    init.add_argument("--out", required=True, help="output .safetensors path (a .json card is written beside it)")
    init.add_argument("--seed", type=int, default=0, help="seed for randomly initialised parts")
    _cfg_options_argument(init)
    init.set_defaults(func=cmd_checkpoint_init)
    card = ckpt_sub.add_parser("show", help="print a checkpoint's card and tensor summary")
    card.add_argument("checkpoint")
    card.set_defaults(func=cmd_checkpoint_show)

    p = sub.add_parser("pretrain", help="pretrain a method on the mmengine Runner; export a suite checkpoint")
    p.add_argument("config")
    p.add_argument("--work-dir", help="Runner work folder (checkpoints, logs, model.safetensors)")
    p.add_argument("--resume", action="store_true", help="resume from the last checkpoint in the work folder")
    _cfg_options_argument(p)
    p.set_defaults(func=cmd_pretrain)

    from place_bench.commands.bench import add_bench_parser
    from place_bench.commands.data import add_data_parser
    from place_bench.commands.demo import add_demo_parser
    from place_bench.commands.embed import add_embed_parser
    from place_bench.commands.evaluate import add_evaluate_parsers
    from place_bench.commands.explain import add_explain_parser
    from place_bench.commands.import_checkpoint import add_import_parser

    add_data_parser(sub)
    add_embed_parser(sub)
    add_explain_parser(sub)
    add_evaluate_parsers(sub)
    add_import_parser(sub)
    add_bench_parser(sub)
    add_demo_parser(sub)
    return parser


def cmd_plugins(args) -> int:
    from place_bench import registry as registries
    from place_bench.plugin_manager import get_plugin_manager

    manager = get_plugin_manager(args.plugin_dir, strict=args.strict)
    rows = [(c.kind, c.name, c.plugin, c.source) for c in registries.components(args.kind)]
    header = ("KIND", "NAME", "PLUGIN", "SOURCE")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(3)]
    for row in [header, *rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(row[:3], widths)) + "  " + row[3])
    print()
    print(f"{len(rows)} components listed; {len(manager.origins)} plugins loaded:")
    for name, origin in sorted(manager.origins.items()):
        print(f"  {name}: {origin}")
    if manager.failures:
        print(f"{len(manager.failures)} plugins failed to load and were skipped:")
        for failure in manager.failures:
            print(f"  {failure.message()}")
    return 0


def cmd_config_show(args) -> int:
    from place_bench import api

    cfg = api.load_config(args.config, args.cfg_options, args.plugin_dir, strict=args.strict)
    print(f"# {getattr(cfg, '_place_bench_source', args.config)}")
    print(cfg.pretty_text)
    return 0


def cmd_checkpoint_init(args) -> int:
    import torch

    from place_bench import api
    from place_bench.config import to_plain
    from place_bench.model.checkpoint import save_checkpoint

    torch.manual_seed(args.seed)
    cfg = api.load_config(args.config, args.cfg_options, args.plugin_dir, strict=args.strict)
    model = api.build_model(cfg)
    path = save_checkpoint(model, args.out, to_plain(cfg), extra={"seed": args.seed, "source": "init"})
    n = sum(p.numel() for p in model.parameters())
    print(f"wrote {path} ({n / 1e6:.2f} M parameters) and {path.with_suffix('.json')}")
    return 0


def cmd_pretrain(args) -> int:
    from place_bench import api
    from place_bench.engine.pretrain import run_pretrain

    cfg = api.load_config(args.config, args.cfg_options, args.plugin_dir, strict=args.strict)
    path = run_pretrain(cfg, work_dir=args.work_dir, resume=args.resume)
    if os.environ.get("RANK", "0") == "0":
        print(f"wrote {path}")
    return 0


def cmd_checkpoint_show(args) -> int:
    import json

    from place_bench.model.checkpoint import load_checkpoint

    state, card = load_checkpoint(args.checkpoint)
    summary = {k: v for k, v in card.items() if k != "config"}
    print(json.dumps(summary, indent=2, sort_keys=True))
    groups: dict[str, int] = {}
    for key, tensor in state.items():
        groups[key.split(".", 1)[0]] = groups.get(key.split(".", 1)[0], 0) + tensor.numel()
    for group, count in groups.items():
        print(f"{group}: {count / 1e6:.2f} M values")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        import place_bench

        print(place_bench.__version__)
        return 0
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    from place_bench.plugin_manager import PluginLoadWarning

    warnings.simplefilter("always", PluginLoadWarning)
    warnings.formatwarning = lambda message, category, *a, **k: f"warning: {message}\n"  # type: ignore[assignment]
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # one clear line for expected failures; tracebacks with PLACE_BENCH_DEBUG=1
        if os.environ.get("PLACE_BENCH_DEBUG"):
            raise
        print(f"place-bench: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
