"""``place-bench eval``, ``leaderboard`` and ``compare``: downstream results in and out of the registry."""

from __future__ import annotations

import os
from pathlib import Path

SYNTHETIC_PROBES = "synthetic_probes"


def add_evaluate_parsers(sub) -> None:
    from place_bench.cli import _cfg_options_argument

    p = sub.add_parser("eval", help="run a downstream task on a checkpoint (or an init config) into the results registry")
    p.add_argument("checkpoint", help="a .safetensors suite checkpoint, or a model config for the random-init / "
                                      "ImageNet-init rows (e.g. eval/random_init_tiny)")
    p.add_argument("--task", required=True, help="task name (cls_linear, zeroshot, retrieval, probes, ...) or a task "
                                                 "config file; a name loads configs/_base_/tasks/<name>.py when present")
    p.add_argument("--dataset", required=True, nargs="+", metavar="MANIFEST",
                   help="prepared manifest(s) (<out>/<dataset>/<protocol>.parquet or its folder); "
                        f"'{SYNTHETIC_PROBES}[:probe][?contrast_gain=G&n=N&...]' writes and uses the synthetic probe sets")
    p.add_argument("--root", help="native dataset folder (default: the manifest sidecar's native_root)")
    p.add_argument("--fractions", nargs="+", type=float, help="label fractions (default: the task config's)")
    p.add_argument("--seeds", nargs="+", type=int, help="seeds (default: the task config's, else 0)")
    p.add_argument("--results", help="results folder (default: $PLACE_BENCH_RESULTS or registry/results)")
    p.add_argument("--work-dir", help="feature cache and side files (default: <results>/../work)")
    p.add_argument("--device", default="cuda" if _cuda() else "cpu")
    p.add_argument("--force", action="store_true", help="recompute units whose records exist")
    p.add_argument("--init-seed", type=int, default=0, help="seed of a config subject's random weights")
    p.add_argument("--checkpoint-format", metavar="FORMAT",
                   help="CHECKPOINT is a foreign checkpoint of this format (mgca, gloria, convirt, benchx), converted "
                        "in memory as import-checkpoint does; the flags below apply to it")
    from place_bench.commands.import_checkpoint import add_import_arguments

    add_import_arguments(p, set_flag="--import-set")
    _cfg_options_argument(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("leaderboard", help="render the leaderboard (Markdown, HTML, CSV, PNG) from the results registry")
    p.add_argument("--results", nargs="+", help="results folder(s) (default: $PLACE_BENCH_RESULTS or registry/results)")
    p.add_argument("--format", nargs="+", default=["md", "html", "csv", "png"], choices=["md", "html", "csv", "png"])
    p.add_argument("--out", help="output folder (default: <results>/../leaderboard)")
    p.add_argument("--all-metrics", action="store_true", help="a column per metric, not only the primary one")
    p.add_argument("--no-reference", action="store_true", help="leave out the published reference rows")
    p.set_defaults(func=cmd_leaderboard)

    p = sub.add_parser("compare", help="paired bootstrap test between two records on the same test set")
    p.add_argument("a", help="record key (or unique prefix) or record file")
    p.add_argument("b", help="record key (or unique prefix) or record file")
    p.add_argument("--metric", help="metric to compare (default: the records' primary metric)")
    p.add_argument("--results", help="results folder (default: $PLACE_BENCH_RESULTS or registry/results)")
    p.add_argument("--n-resamples", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_compare)


def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:  # pragma: no cover
        return False


def task_config(task: str, cfg_options, plugin_dirs) -> tuple[dict, list | None, list | None]:
    """(task section, fractions, seeds) of ``--task``: a config file, ``_base_/tasks/<name>``, or a bare name."""
    from place_bench import api
    from place_bench.config import ConfigError, to_plain

    candidates = [task] if (task.endswith(".py") or os.sep in task) else [f"_base_/tasks/{task}", None]
    for name in candidates:
        if name is None:
            break
        try:
            cfg = to_plain(api.load_config(name, cfg_options, plugin_dirs))
        except ConfigError as exc:
            if "not found" in str(exc) and name != task:
                break
            raise
        if "task" not in cfg:
            raise ConfigError(f"{name}: a task config needs a 'task' section")
        return override_by_dataset(dict(cfg["task"]), cfg_options), cfg.get("fractions"), cfg.get("seeds")
    section = {"type": task}
    for key, value in (cfg_options or {}).items():
        if not key.startswith("task."):
            raise ConfigError(f"--cfg-options {key}: only task.* keys apply to a task without a config file")
        section[key[len("task."):]] = value
    from mmengine.config import Config

    from place_bench.config import validate_config

    validate_config(Config({"task": section}))
    return section, None, None


def override_by_dataset(section: dict, cfg_options) -> dict:
    """A command-line ``task.KEY=VALUE`` also replaces KEY in every ``by_dataset`` entry that sets
    it, so an explicit override wins over the protocol's per-dataset settings."""
    per_dataset = section.get("by_dataset") or {}
    for option, value in (cfg_options or {}).items():
        parts = option.split(".")
        if len(parts) == 2 and parts[0] == "task":
            for entry in per_dataset.values():
                if isinstance(entry, dict) and parts[1] in entry:
                    entry[parts[1]] = value
    return section


def datasets_of(values, root):
    from place_bench.engine.task import DatasetRef
    from place_bench.plugins.datasets.synthetic.probes_manifest import is_probe_entry

    refs = []
    for value in values:
        if is_probe_entry(value) and not Path(value).exists():
            from place_bench.plugins.datasets.synthetic.probes_manifest import SyntheticProbes, parse_probe_entry

            names, settings = parse_probe_entry(value)
            for name in names:
                refs.append(DatasetRef.open(SyntheticProbes(name, **settings).materialize()))
            continue
        refs.append(DatasetRef.open(value, root))
    return refs


def foreign_of(args) -> dict | None:
    """The ``foreign=`` settings of ``load_subject`` from ``--checkpoint-format`` and the import flags."""
    from place_bench.commands.import_checkpoint import import_kwargs

    settings = import_kwargs(args)
    if not args.checkpoint_format:
        given = [k for k, v in settings.items() if v]
        if given:
            flag = {"options": "import-set"}.get(given[0], given[0].replace("_", "-"))
            raise ValueError(f"--{flag} applies to foreign checkpoints: add --checkpoint-format")
        return None
    return dict({k: v for k, v in settings.items() if v not in (None, {}, False)}, format=args.checkpoint_format)


def cmd_eval(args) -> int:
    from place_bench.engine.evaluate import evaluate, load_subject
    from place_bench.plugin_manager import get_plugin_manager
    from place_bench.results.store import ResultsStore

    get_plugin_manager(args.plugin_dir, strict=args.strict)
    section, fractions, seeds = task_config(args.task, args.cfg_options, args.plugin_dir)
    datasets = datasets_of(args.dataset, args.root)
    subject = load_subject(args.checkpoint, plugin_dirs=args.plugin_dir, seed=args.init_seed, foreign=foreign_of(args))
    if subject.load_report.get("overrides"):
        print(f"warning: {subject.path} was loaded with {', '.join(subject.load_report['overrides'])}; "
              "every record says so")
    store = ResultsStore(args.results)
    failed = 0
    for dataset in datasets:
        summary = evaluate(subject, section, dataset, store, fractions=args.fractions or fractions,
                           seeds=args.seeds or seeds or [0], work_dir=args.work_dir, force=args.force,
                           device=args.device, overrides=args.cfg_options)
        failed += len(summary.failed)
        print(f"{section['type']} on {dataset.name}: {len(summary.written)} recorded, {len(summary.skipped)} "
              f"already there, {len(summary.failed)} failed -> {store.root}")
        for record in summary.records:
            if record["status"] != "ok":
                print(f"  failed: fraction={record['fraction']} seed={record['seed']}: {record['error']}")
    return 1 if failed else 0


def cmd_leaderboard(args) -> int:
    from place_bench.results.leaderboard import write_leaderboard
    from place_bench.results.store import default_results_dir

    roots = [Path(r) for r in (args.results or [default_results_dir()])]
    out = Path(args.out) if args.out else roots[0].parent / "leaderboard"
    paths = write_leaderboard(roots, out, formats=tuple(args.format), all_metrics=args.all_metrics,
                              include_reference=not args.no_reference)
    for path in paths:
        if path.suffix == ".md":
            print(path.read_text())
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def _record(store, ref: str):
    """(record, path) from a record file or a key / unique key prefix."""
    import json

    path = Path(ref)
    if path.is_file():
        return json.loads(path.read_text()), path
    hits = sorted(store.root.glob(f"*/*/{ref}*.json"))
    hits = [h for h in hits if not h.name.startswith(".")]
    if len(hits) != 1:
        raise ValueError(f"record {ref!r}: {'no' if not hits else len(hits)} matching records under {store.root}")
    return json.loads(hits[0].read_text()), hits[0]


def cmd_compare(args) -> int:
    from place_bench.evaluation.compare import compare_records
    from place_bench.results.store import ResultsStore

    store = ResultsStore(args.results)
    a, a_path = _record(store, args.a)
    b, b_path = _record(store, args.b)
    metric, result = compare_records(a, a_path, b, b_path, args.metric, args.n_resamples, args.seed)
    label = lambda r: f"{r['method'].get('label')} [{r['key'][:10]}] {r['task']}/{r['dataset']} fraction={r['fraction']} seed={r['seed']}"  # noqa: E731
    print(f"A: {label(a)}\nB: {label(b)}")
    print(f"{metric}: A {result.value_a:.4f}  B {result.value_b:.4f}  A-B {result.difference:+.4f} "
          f"[{result.low:+.4f}, {result.high:+.4f}] ({result.level:.0%} paired bootstrap, {result.n_valid} resamples), "
          f"p = {result.p_value:.4f}")
    return 0
