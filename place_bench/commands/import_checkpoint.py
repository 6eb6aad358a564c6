"""``place-bench import-checkpoint``: a foreign checkpoint (MGCA, GLoRIA, ConVIRT, BenchX) as a
suite checkpoint, and the flags ``place-bench eval --checkpoint-format`` shares with it."""

from __future__ import annotations

import argparse
import ast
from typing import Any


def add_import_arguments(parser: argparse.ArgumentParser, set_flag: str = "--set") -> None:
    """The options of a foreign load (shared by ``import-checkpoint`` and ``eval``)."""
    parser.add_argument("--text-model", metavar="DIR",
                        help="local folder with the text encoder's config.json and vocab.txt (Bio_ClinicalBERT for "
                             "mgca and convirt); its weights come from the checkpoint; nothing is downloaded")
    parser.add_argument("--arch", help="the format's architecture (resnet50, vit_b16); default: detected from the keys")
    parser.add_argument("--allow-pickle", action="store_true",
                        help="fully unpickle a torch checkpoint (Lightning .ckpt files need it). Unpickling can "
                             "execute code: only for files you trust. Default: safetensors or weights_only loading")
    parser.add_argument("--allow-missing", action="store_true",
                        help="load although weights are missing (they keep their initial values); recorded in the "
                             "card and every result, and the label says [partial load]")
    parser.add_argument("--allow-unexpected", action="store_true",
                        help="ignore file keys the adapter cannot place; recorded in the card and every result")
    parser.add_argument(set_flag, dest="import_options", action="append", default=[], metavar="KEY=VALUE",
                        help="set a model.* or data.* key of the suite config the adapter builds (repeatable), e.g. "
                             "data.pipeline.crop=64 or model.image_encoder.depth=2 for a non-standard ViT; the "
                             "weights must still fit")
    parser.add_argument("--label", help="method label on the leaderboard (default: the adapter's)")


def parse_options(items: list[str]) -> dict[str, Any]:
    """``["a.b=1", "c=x"]`` -> ``{"a.b": 1, "c": "x"}`` (values as Python literals when they parse)."""
    options: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ValueError(f"import option {item!r}: expected KEY=VALUE")
        try:
            options[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            options[key] = text
    return options


def import_kwargs(args) -> dict[str, Any]:
    """Keyword arguments of :func:`place_bench.model.importer.import_foreign` from parsed flags."""
    return dict(text_model=args.text_model, arch=args.arch, allow_pickle=args.allow_pickle,
                allow_missing=args.allow_missing, allow_unexpected=args.allow_unexpected,
                options=parse_options(args.import_options), label=args.label)


def add_import_parser(sub) -> None:
    p = sub.add_parser("import-checkpoint",
                       help="convert a foreign checkpoint (mgca, gloria, convirt, benchx) into a suite checkpoint")
    p.add_argument("source", help="the foreign checkpoint file (.ckpt, .pth, .pt, .bin, .safetensors)")
    p.add_argument("--format", required=True,
                   help="source format: mgca, gloria, convirt, benchx (`place-bench plugins --kind checkpoint_adapter`)")
    p.add_argument("--out", required=True, help="output .safetensors path (its card .json is written beside it)")
    add_import_arguments(p)
    p.set_defaults(func=cmd_import_checkpoint)


def describe_import(imported) -> list[str]:
    """Human-readable lines about one import (what the CLI prints)."""
    source = imported.source
    counts = imported.report.counts()
    lines = [f"read {source.path} (sha256 {source.sha256[:12]}..., {source.container} container"
             + (", unpickled" if source.pickled else "") + f") with adapter {imported.adapter.name}",
             "  " + ", ".join(f"{k} {v}" for k, v in counts.items() if k != "missing_encoder")]
    if source.stand_ins:
        lines.append(f"  stand-ins for unimportable classes: {', '.join(source.stand_ins)}")
    if imported.report.overrides:
        lines.append(f"  OVERRIDES: {', '.join(imported.report.overrides)}: "
                     f"missing {imported.report.missing[:5]}, unexpected {imported.report.unexpected[:5]}")
    zero_shot = imported.provenance["zero_shot"]
    offered = "offered" if zero_shot["offered"] else f"not offered ({zero_shot['reason']})"
    lines.append(f"  zero-shot / retrieval: {offered}")
    return lines


def cmd_import_checkpoint(args) -> int:
    from place_bench.model.importer import import_checkpoint
    from place_bench.plugin_manager import get_plugin_manager

    if not str(args.out).endswith(".safetensors"):
        raise ValueError(f"--out must end in .safetensors, got '{args.out}'")
    get_plugin_manager(args.plugin_dir, strict=args.strict)
    path, imported = import_checkpoint(args.source, args.format, args.out, **import_kwargs(args))
    print("\n".join(describe_import(imported)))
    print(f"wrote {path} and {path.with_suffix('.json')}")
    return 0
