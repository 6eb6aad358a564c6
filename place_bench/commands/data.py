"""``place-bench data``: prepare native datasets into manifests, and inspect prepared manifests.

``place-bench data prepare DATASET --root R --protocol P --out DIR [--no-image-check] [--force]``
    looks the dataset up in the ``dataset`` registry, runs its ``prepare`` and writes
    ``DIR/DATASET/P.parquet`` and ``DIR/DATASET/P.json`` (see :mod:`place_bench.data.prepare`);
    prints the counts per split and the warnings.

``place-bench data inspect PATH``
    ``PATH`` is a sidecar (``.json``), a manifest (``.parquet``) or a folder (every sidecar in it
    and in its sub-folders); prints, per manifest, the rows, subjects and label counts of each
    split and the warnings recorded by ``prepare``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_data_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="prepare native datasets into manifests; inspect manifests")
    data_sub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)

    prep = data_sub.add_parser("prepare", help="read a native dataset and write its normalized manifest")
    prep.add_argument("dataset", help="a registered dataset (place-bench plugins --kind dataset)")
    prep.add_argument("--root", required=True, help="folder of the native dataset copy")
    prep.add_argument("--protocol", required=True, help="split protocol, e.g. mgca, mgca_compat, suite")
    prep.add_argument("--out", required=True, help="cache folder; writes OUT/DATASET/PROTOCOL.parquet and .json")
    prep.add_argument(
        "--no-image-check", dest="check_images", action="store_false",
        help="do not open the images (labels only; width/height stay empty)",
    )
    prep.add_argument("--force", action="store_true", help="rewrite even when an up-to-date manifest exists")
    prep.add_argument(
        "--set", dest="options", action="append", default=[], metavar="KEY=VALUE",
        help="a setting of the dataset plugin (repeatable), e.g. --set n_per_class=40 for a small 5x200",
    )
    prep.set_defaults(func=run_data_prepare)

    insp = data_sub.add_parser("inspect", help="show counts per split and label, and warnings, of manifests")
    insp.add_argument("path", help="a sidecar .json, a manifest .parquet, or a folder of them")
    insp.set_defaults(func=run_data_inspect)

    from place_bench.plugin_manager import get_plugin_manager

    get_plugin_manager().pluggy.hook.place_bench_add_data_commands(subparsers=data_sub)


def _parse_options(name: str, dataset_cls, items: list[str]) -> dict:
    """``["k=v", ...]`` as constructor keywords of the dataset class, checked against its signature."""
    import ast
    import inspect

    accepted = [p for p in inspect.signature(dataset_cls).parameters if p != "self"]
    options = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE")
        if key not in accepted:
            raise ValueError(
                f"--set {key}: dataset {name!r} has no setting {key!r}; settings: {', '.join(accepted) or 'none'}"
            )
        try:
            options[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            options[key] = text
    return options


def run_data_prepare(args) -> int:
    from place_bench.plugin_manager import get_plugin_manager
    from place_bench.registry import get_component

    get_plugin_manager(getattr(args, "plugin_dir", None) or (), strict=getattr(args, "strict", None) or None)
    dataset_cls = get_component("dataset", args.dataset).obj
    options = _parse_options(args.dataset, dataset_cls, getattr(args, "options", []) or [])
    dataset = dataset_cls(**options) if isinstance(dataset_cls, type) else dataset_cls
    result = dataset.prepare(args.root, args.protocol, args.out, check_images=args.check_images, force=args.force)
    state = "up to date" if result.reused else "wrote"
    print(f"{state} {result.manifest_path} ({result.rows} rows, {result.fingerprint[:19]}...)")
    print(f"sidecar {result.sidecar_path}")
    _print_summary(_sidecar_of(result.sidecar_path))
    return 0


def run_data_inspect(args) -> int:
    from place_bench.data.manifest import ManifestError

    path = Path(args.path)
    if path.is_dir():
        sidecars = sorted(p for p in path.rglob("*.json") if p.with_suffix(".parquet").is_file())
        if not sidecars:
            raise ManifestError(f"{path}: no manifest (*.parquet with a *.json sidecar) found")
    elif path.suffix in (".json", ".parquet"):
        sidecars = [path.with_suffix(".json")]
    else:
        raise ManifestError(f"{path}: expected a .json sidecar, a .parquet manifest or a folder")
    for i, sidecar in enumerate(sidecars):
        if i:
            print()
        data = _sidecar_of(sidecar)
        print(f"{data['dataset']} / {data['protocol']}: {data['manifest']['rows']} rows  ({sidecar})")
        print(f"  fingerprint {data['manifest']['fingerprint']}  schema {data['schema_version']}  code {data['code_version']}")
        if data.get("native_version"):
            print(f"  native: {data['native_version']}  root: {data['native_root']}")
        if data.get("split_rule"):
            print(f"  split: {data['split_rule']}")
        _print_summary(data)
    return 0


def _sidecar_of(path) -> dict:
    from place_bench.data.manifest import read_sidecar

    return read_sidecar(path)


def _print_summary(sidecar: dict) -> None:
    counts = sidecar["counts"]
    splits = [s for s in ("train", "valid", "test") if counts.get(s, {}).get("rows")]
    label_names = sidecar.get("label_names") or []
    header = ["split", "rows", "subjects", "boxes", "masks"]
    table = [header]
    for s in splits:
        c = counts[s]
        table.append([s, str(c["rows"]), str(c["subjects"]), str(c["boxes"]), str(c["rows_with_mask"])])
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for r in table:
        print("  " + "  ".join(v.rjust(w) if j else v.ljust(w) for j, (v, w) in enumerate(zip(r, widths))))
    if label_names:
        print("  labels (positive / uncertain / negative / blank per split):")
        name_w = max(len(n) for n in label_names)
        for name in label_names:
            cells = []
            for s in splits:
                v = counts[s]["labels"].get(name, {})
                cells.append(f"{s} {v.get('1', 0)}/{v.get('-1', 0)}/{v.get('0', 0)}/{v.get('nan', 0)}")
            print(f"    {name.ljust(name_w)}  " + "   ".join(cells))
    classes = {s: counts[s].get("classes") for s in splits if counts[s].get("classes")}
    for s, cls in classes.items():
        print(f"  classes ({s}): " + ", ".join(f"{k} {v}" for k, v in cls.items()))
    subsets = {s: counts[s].get("subsets") for s in splits if counts[s].get("subsets")}
    for s, sub in subsets.items():
        print(f"  subsets ({s}): " + ", ".join(f"{k} {v}" for k, v in sub.items()))
    if sidecar.get("frac_base") is not None:
        print(f"  fractions: frac_rank < round(p * {sidecar['frac_base']})")
    overlap = sidecar.get("subject_overlap") or {}
    if overlap:
        print("  subjects in two splits: " + ", ".join(f"{k} {v}" for k, v in overlap.items()))
    warnings = sidecar.get("warnings") or []
    print(f"  warnings: {len(warnings) or 'none'}")
    for w in warnings:
        examples = f" (e.g. {'; '.join(w['examples'][:3])})" if w.get("examples") else ""
        print(f"    {w['code']} x{w['count']}: {w['message']}{examples}")
