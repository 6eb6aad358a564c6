"""The benchmark runner: one config, every (method x task x dataset), resumable.

A benchmark config has a ``benchmark`` section::

    benchmark = dict(
        results_dir="work/bench/results",   # the results store the records go to
        work_dir="work/bench",              # pretraining runs, native data, caches, failures.jsonl
        prepare=[dict(dataset="covidx", size="tiny", protocol="suite", out="work/bench/manifests")],
        methods=[
            dict(name="place", pretrain="pretrain/place_synthetic", cfg_options={...}),  # pretrained here
            dict(name="tiny-ckpt", checkpoint="path/model.safetensors"),                # an existing checkpoint
            dict(name="mgca-r50", checkpoint="mgca_resnet_50.ckpt", format="mgca",    # a foreign one, converted
                 text_model="local/Bio_ClinicalBERT", allow_pickle=True),          # on load (import-checkpoint)
            dict(name="random", config="eval/random_init_tiny_vit", init_seed=0),      # an init row
        ],
        tasks=[
            dict(task="cls_linear", datasets=["work/manifests/covidx"], fractions=[0.1, 1.0], seeds=[0, 1],
                 cfg_options={"task.n_resamples": 200}),
            dict(task="probes", datasets=["synthetic_probes:negation_effusion"], methods=["place"]),
        ],
        executor=dict(type="local"),        # or "submitit" / "submitit_local"
        device="auto",                      # cpu, cuda or auto
        leaderboard=dict(out="work/bench/leaderboard", formats=["md", "html", "csv", "png"]),
    )

:func:`plan` expands it into units, in order:

* ``prepare`` steps: the synthetic emulator of ``native`` (default: ``dataset``) writes the native
  data under ``<work_dir>/native/<native>`` (or ``root=``) and the dataset component prepares
  ``<out>/<dataset>/<protocol>.parquet`` (``settings``: the dataset component's keywords;
  ``check_images`` default True, as ``place-bench data prepare``: rows whose image is missing are
  left out, like the emulators' planted missing files); skipped when that manifest exists.
* one pretraining unit per method with ``pretrain=``: ``run_pretrain`` of that config (with the
  method's ``cfg_options``) in ``<work_dir>/pretrain/<name>``; skipped when its
  ``model.safetensors`` exists.
* one evaluation unit per (method, task, dataset): an :func:`~place_bench.engine.evaluate.evaluate`
  call, which itself skips the (fraction, seed, variant) records already in the store. The plan
  counts those records the same way (same record keys) so the progress display knows what is
  done and what is left. A task whose ``needs`` the method cannot serve (zero-shot on an
  image-only init row) is left out with a note, not a failure. A task entry may restrict itself
  to some methods with ``methods=[...]``.

:func:`run` runs the pending units in order. An exception in a unit is caught and the run goes
on: failed evaluation units are recorded as ``failed`` records by ``evaluate`` (or, when no record
can be written, e.g. a missing manifest, in ``<work_dir>/failures.jsonl``); a failed pretraining
unit goes to ``failures.jsonl`` and the evaluation units of its method are ``blocked``. At the end
a summary table is printed and the leaderboard of ``results_dir`` is written.

Executors: ``local`` runs every unit in this process. ``submitit`` submits each unit as a job
through ``submitit.AutoExecutor(folder=...)`` (Slurm when available, else local processes);
every other key of ``executor`` goes to ``update_parameters`` (``slurm_partition``,
``timeout_min``, ``gpus_per_node``, ...), and ``executor.pretrain=dict(...)`` adds parameters for
the pretraining jobs only, e.g. ``dict(tasks_per_node=4, gpus_per_node=4)`` for DDP: submitit
starts one task per GPU and :func:`pretrain_job` maps submitit's environment to the
``RANK``/``WORLD_SIZE``/``MASTER_ADDR`` variables the mmengine Runner reads (the same as under
``torchrun --nproc_per_node N -m place_bench.cli pretrain CFG``, which also works by hand).
``submitit_local`` uses ``submitit.LocalExecutor`` (subprocesses on this machine; tests).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

__all__ = ["BenchPlan", "BenchSummary", "EvalUnit", "PrepareUnit", "PretrainUnit", "plan", "run", "format_plan"]

EXECUTORS = ("local", "submitit", "submitit_local")


# -- the plan -------------------------------------------------------------------------------

@dataclasses.dataclass
class PrepareUnit:
    """One ``prepare`` step. ``size``, ``seed`` and ``contrast_gain`` (the synthetic world's lesion
    contrast multiplier, datasets.md §4.9; 1.0 = the generator's own) go to the emulator."""

    dataset: str
    native: str
    root: Path
    protocol: str
    out: Path
    size: str = "tiny"
    seed: int = 0
    contrast_gain: float = 1.0
    settings: dict = dataclasses.field(default_factory=dict)
    check_images: bool = True
    done: bool = False
    kind: str = "prepare"

    @property
    def manifest(self) -> Path:
        return self.out / self.dataset / f"{self.protocol}.parquet"

    def native_conflict(self) -> str | None:
        """Why the emulation already in ``root`` cannot serve this step (it was made with another
        ``size``, ``seed`` or ``contrast_gain``), or None. Such a tree is neither reused nor
        replaced. A folder without an emulation record (a real dataset copy) never conflicts."""
        from place_bench.plugins.datasets.synthetic.emulators import recorded_emulation

        info = recorded_emulation(self.root)
        if info is None:
            return None
        wanted = {"size": self.size, "seed": self.seed, "contrast_gain": self.contrast_gain}
        differ = [f"{key} {info.get(key)!r} (this step: {value!r})" for key, value in wanted.items()
                  if info.get(key) != value]
        if not differ:
            return None
        return (f"{self.root} holds an emulation with {', '.join(differ)}; "
                f"remove it, or give the step its own root= and out=")

    @property
    def name(self) -> str:
        return f"prepare {self.dataset}/{self.protocol}"


@dataclasses.dataclass
class PretrainUnit:
    method: str
    config: str
    cfg_options: dict
    work_dir: Path
    done: bool = False
    kind: str = "pretrain"
    stale: list = dataclasses.field(default_factory=list)  # recipe differences of an existing checkpoint

    @property
    def checkpoint(self) -> Path:
        return self.work_dir / "model.safetensors"

    @property
    def name(self) -> str:
        return f"pretrain {self.method} ({self.config})"


@dataclasses.dataclass
class EvalUnit:
    method: str
    subject: str                 # checkpoint path or model config name
    subject_options: dict
    init_seed: int
    task: str                    # the task entry's name (config) ...
    task_name: str               # ... and the task it builds (results are filed under this)
    task_cfg: dict
    dataset: str                 # manifest path / folder or synthetic_probes:NAME
    fractions: list | None
    seeds: list
    overrides: dict
    depends_on: str | None = None   # the pretraining method it waits for
    foreign: dict | None = None     # a foreign checkpoint's settings (format=, text_model=, ...)
    n_records: int | None = None    # record units (fraction x seed x variant); None: unknown yet
    n_done: int | None = None       # of which already recorded ok; None: unknown (checkpoint or manifest missing)
    note: str | None = None         # why it is left out (needs the method cannot serve)
    kind: str = "eval"

    @property
    def name(self) -> str:
        return f"{self.task} {self.method} {dataset_label(self.dataset)}"

    @property
    def done(self) -> bool:
        return self.n_records is not None and self.n_done == self.n_records


@dataclasses.dataclass
class BenchPlan:
    source: str
    results_dir: Path
    work_dir: Path
    executor: dict
    device: str
    leaderboard: dict | None
    prepare: list[PrepareUnit]
    pretrain: list[PretrainUnit]
    evals: list[EvalUnit]
    force: bool = False
    control: dict | None = None
    methods: list[dict] = dataclasses.field(default_factory=list)

    @property
    def units(self) -> list:
        return [*self.prepare, *self.pretrain, *self.evals]

    @property
    def runnable_evals(self) -> list[EvalUnit]:
        return [u for u in self.evals if u.note is None]

    @property
    def stale(self) -> list[PretrainUnit]:
        return [u for u in self.pretrain if u.stale]


def dataset_label(value: str) -> str:
    if value.startswith("synthetic_probes"):
        return value
    path = Path(value)
    return path.parent.name if path.suffix == ".parquet" else path.name


def _section(cfg) -> dict:
    from place_bench.config import ConfigError, to_plain

    plain = to_plain(cfg)
    bench = plain.get("benchmark")
    if not isinstance(bench, dict):
        raise ConfigError(f"{getattr(cfg, 'filename', '<config>')}: a benchmark config needs a 'benchmark' section")
    known = {"results_dir", "work_dir", "prepare", "methods", "tasks", "executor", "leaderboard", "device", "control"}
    unknown = sorted(set(bench) - known)
    if unknown:
        raise ConfigError(f"benchmark: unknown key(s) {unknown}; known: {sorted(known)}")
    if not bench.get("methods") or not bench.get("tasks"):
        raise ConfigError("benchmark: 'methods' and 'tasks' must both list something")
    return bench


def _encoders_of_model(model_cfg: Mapping | None) -> set[str]:
    model_cfg = model_cfg or {}
    return {kind for kind in ("image", "text") if model_cfg.get(f"{kind}_encoder") is not None}


def _method_subject(method: dict, work_dir: Path, plugin_dirs) -> tuple[str, dict, set[str] | None, str | None]:
    """(subject source, subject cfg_options, encoders it has or None if unknown, sha256 or None)."""
    from place_bench import api
    from place_bench.config import ConfigError, to_plain

    name = method["name"]
    kinds = [k for k in ("pretrain", "checkpoint", "config") if method.get(k)]
    if len(kinds) != 1:
        raise ConfigError(f"benchmark.methods[{name}]: give exactly one of pretrain=, checkpoint=, config=")
    if kinds[0] == "pretrain":
        cfg = api.load_config(method["pretrain"], method.get("cfg_options") or {}, plugin_dirs)
        ckpt = work_dir / "pretrain" / name / "model.safetensors"
        return str(ckpt), {}, _encoders_of_model(to_plain(cfg).get("model")), _checkpoint_sha(ckpt)
    if kinds[0] == "checkpoint" and method.get("format"):
        from place_bench.engine.evaluate import FOREIGN_KEYS, foreign_subject_info

        foreign = {k: method[k] for k in FOREIGN_KEYS if k in method}
        info = foreign_subject_info(method["checkpoint"], foreign, plugin_dirs)
        return str(method["checkpoint"]), {}, set(info["encoders"]), info["sha256"]
    if kinds[0] == "checkpoint":
        ckpt = Path(method["checkpoint"])
        encoders = None
        if ckpt.is_file():
            from place_bench.model.checkpoint import read_card

            encoders = _encoders_of_model((read_card(ckpt).get("config") or {}).get("model"))
        return str(ckpt), {}, encoders, _checkpoint_sha(ckpt)
    import hashlib

    options = dict(method.get("cfg_options") or {})
    config = to_plain(api.load_config(method["config"], options, plugin_dirs))
    seed = int(method.get("init_seed", 0))
    model_json = json.dumps({"model": config.get("model"), "seed": seed}, sort_keys=True, default=str)
    sha = "init:" + hashlib.sha256(model_json.encode()).hexdigest()   # as evaluate.load_subject computes it
    return method["config"], options, _encoders_of_model(config.get("model")), sha


def _foreign_settings(method: Mapping[str, Any]) -> dict | None:
    """A method's foreign-checkpoint settings (``checkpoint=`` with ``format=``), else None."""
    if not (method.get("checkpoint") and method.get("format")):
        return None
    from place_bench.engine.evaluate import FOREIGN_KEYS

    return {k: method[k] for k in FOREIGN_KEYS if k in method}


def _checkpoint_sha(path: Path) -> str | None:
    if not path.is_file():
        return None
    from place_bench.data.manifest import sha256_file
    from place_bench.model.checkpoint import read_card

    try:
        return read_card(path).get("weights_sha256") or sha256_file(path)
    except Exception:
        return sha256_file(path)


def _open_dataset(value: str, materialize: bool):
    """The DatasetRef of a benchmark dataset entry, or None when it is not there yet (plan time)."""
    from place_bench.commands.evaluate import datasets_of
    from place_bench.engine.task import DatasetRef
    from place_bench.plugins.datasets.synthetic.probes_manifest import (SyntheticProbes, is_probe_entry,
                                                                          parse_probe_entry)

    if is_probe_entry(value) and not Path(value).exists():
        if not materialize:
            names, settings = parse_probe_entry(value)
            if len(names) != 1:
                return None
            manifest = SyntheticProbes(names[0], **settings).native_root / "suite.parquet"
            return DatasetRef.open(manifest) if manifest.is_file() else None
        refs = datasets_of([value], None)
        if len(refs) != 1:
            raise ValueError(f"{value}: name one probe (synthetic_probes:NAME) per benchmark dataset entry")
        return refs[0]
    path = Path(value)
    if not materialize and not (path.is_file() or (path.is_dir() and list(path.glob("*.parquet")))):
        return None
    return DatasetRef.open(value)


def _count_done(unit: EvalUnit, sha: str | None, store, plugin_dirs) -> None:
    from place_bench.engine.evaluate import build_task, unit_identity
    from place_bench.results.records import record_key

    task = build_task(unit.task_cfg)
    units = task.units(unit.fractions, unit.seeds)
    unit.n_records = len(units)
    if sha is None:
        return
    try:
        dataset = _open_dataset(unit.dataset, materialize=False)
    except Exception:
        dataset = None
    if dataset is None:
        return
    subject = type("_S", (), {"sha256": sha})()
    done = 0
    for u in units:
        key = record_key(unit_identity(subject, task, dataset, u))
        try:
            if store.has(key) and store.get(key).get("status") == "ok":
                done += 1
        except Exception:
            pass
    unit.n_done = done


def plan(cfg, force: bool = False, plugin_dirs: Sequence[str] = ()) -> BenchPlan:
    """Expand the ``benchmark`` section of ``cfg`` (a validated Config) into units (see the module doc)."""
    from place_bench.commands.evaluate import task_config
    from place_bench.config import ConfigError
    from place_bench.engine.evaluate import build_task
    from place_bench.plugins.datasets.synthetic.latent import check_contrast_gain
    from place_bench.results.store import ResultsStore

    bench = _section(cfg)
    work_dir = Path(bench.get("work_dir") or "work/bench")
    results_dir = Path(bench.get("results_dir") or work_dir / "results")
    executor = dict(bench.get("executor") or {"type": "local"})
    if executor.get("type", "local") not in EXECUTORS:
        raise ConfigError(f"benchmark.executor.type {executor.get('type')!r}: choose from {EXECUTORS}")
    leaderboard = bench.get("leaderboard", {"out": str(work_dir / "leaderboard")})
    store = ResultsStore(results_dir)

    prepares = []
    for step in bench.get("prepare") or []:
        step = dict(step)
        dataset = step.pop("dataset")
        native = step.pop("native", dataset)
        unit = PrepareUnit(dataset=dataset, native=native,
                           root=Path(step.pop("root", work_dir / "native" / native)),
                           protocol=step.pop("protocol", "suite"), out=Path(step.pop("out", work_dir / "manifests")),
                           size=step.pop("size", "tiny"), seed=int(step.pop("seed", 0)),
                           settings=dict(step.pop("settings", {})),
                           check_images=bool(step.pop("check_images", True)))
        try:
            unit.contrast_gain = check_contrast_gain(step.pop("contrast_gain", 1.0))
        except ValueError as exc:
            raise ConfigError(f"benchmark.prepare[{dataset}]: {exc}") from None
        if step:
            raise ConfigError(f"benchmark.prepare[{dataset}]: unknown key(s) {sorted(step)}")
        unit.done = unit.manifest.is_file() and unit.native_conflict() is None
        prepares.append(unit)

    pretrains, evals = [], []
    methods = []
    names = [m.get("name") for m in bench["methods"]]
    if None in names or len(set(names)) != len(names):
        raise ConfigError(f"benchmark.methods: every method needs a unique name; got {names}")
    for method in bench["methods"]:
        method = dict(method)
        source, options, encoders, sha = _method_subject(method, work_dir, plugin_dirs)
        depends = None
        if method.get("pretrain"):
            unit = PretrainUnit(method["name"], method["pretrain"], dict(method.get("cfg_options") or {}),
                                work_dir / "pretrain" / method["name"])
            unit.done = unit.checkpoint.is_file() and not force
            if unit.done:
                unit.stale = _stale_recipe(unit, plugin_dirs)
                unit.done = not unit.stale
            if not unit.done:
                sha = None
            depends = method["name"]
            pretrains.append(unit)
        methods.append((method, source, options, encoders, sha, depends))

    for entry in bench["tasks"]:
        entry = dict(entry)
        task_name = entry.get("task")
        if not task_name:
            raise ConfigError(f"benchmark.tasks: an entry without task=: {entry}")
        extra = sorted(set(entry) - {"task", "datasets", "fractions", "seeds", "cfg_options", "methods"})
        if extra:
            raise ConfigError(f"benchmark.tasks[{task_name}]: unknown key(s) {extra}")
        options = dict(entry.get("cfg_options") or {})
        section, fractions, seeds = task_config(task_name, options, plugin_dirs)
        needs = set(build_task(section).needs)
        only = entry.get("methods")
        for method, source, subject_options, encoders, sha, depends in methods:
            if only and method["name"] not in only:
                continue
            for dataset in entry.get("datasets") or []:
                unit = EvalUnit(
                    method=method["name"], subject=source, subject_options=subject_options,
                    init_seed=int(method.get("init_seed", 0)), task=task_name, task_name=section["type"],
                    task_cfg=section, dataset=str(dataset), fractions=entry.get("fractions") or fractions,
                    seeds=list(entry.get("seeds") or seeds or [0]), overrides=options, depends_on=depends,
                    foreign=_foreign_settings(method))
                if encoders is not None and not needs <= encoders:
                    missing = " and ".join(sorted(needs - encoders))
                    unit.note = f"needs the {missing} encoder, which {method['name']} has not"
                elif not force:
                    _count_done(unit, sha, store, plugin_dirs)
                evals.append(unit)
    control = bench.get("control")
    if control is not None:
        control = _check_control(control, names)
    return BenchPlan(source=str(getattr(cfg, "filename", "") or ""), results_dir=results_dir, work_dir=work_dir,
                     executor=executor, device=str(bench.get("device") or "auto"), leaderboard=leaderboard,
                     prepare=prepares, pretrain=pretrains, evals=evals, force=force, control=control,
                     methods=[dict(m) for m in bench["methods"]])


def _stale_recipe(unit: PretrainUnit, plugin_dirs) -> list[str]:
    """How the config that trained ``unit.checkpoint`` differs from the method's config now."""
    from place_bench import api
    from place_bench.config import to_plain
    from place_bench.engine.recipe import recipe_differences
    from place_bench.model.checkpoint import read_card

    trained = read_card(unit.checkpoint).get("config") or {}
    return recipe_differences(trained, to_plain(api.load_config(unit.config, unit.cfg_options, plugin_dirs)))


def _stale_lines(unit: PretrainUnit, indent: str, limit: int = 8) -> list[str]:
    lines = [indent + d for d in unit.stale[:limit]]
    if len(unit.stale) > limit:
        lines.append(f"{indent}... and {len(unit.stale) - limit} more")
    return lines


def _check_control(control: Mapping[str, Any], method_names: Sequence[str]) -> dict:
    """Validate a ``control`` section (arms of benchmark methods and their criteria) at plan time."""
    from place_bench.config import ConfigError
    from place_bench.results.criteria import CONTROL_KEYS, Criterion, parse_arms

    control = dict(control)
    unknown = sorted(set(control) - set(CONTROL_KEYS))
    if unknown:
        raise ConfigError(f"benchmark.control: unknown key(s) {unknown}; known: {list(CONTROL_KEYS)}")
    arms = parse_arms(control)
    for arm, spec in arms.items():
        strangers = [m for m in spec["methods"] if m not in method_names]
        if strangers:
            raise ConfigError(f"benchmark.control.arms[{arm}]: {strangers} are not benchmark methods")
    for entry in control.get("criteria") or []:
        Criterion.from_config(entry, arms)
    return control


def control_report(p: BenchPlan, plugin_dirs: Sequence[str] = ()):
    """Judge ``p.control`` on the records in ``p.results_dir`` (the methods' checkpoints as they are now)."""
    from place_bench.results.criteria import evaluate_control
    from place_bench.results.store import ResultsStore

    wanted = {m for arm in (p.control or {}).get("arms", {}).values() for m in arm["methods"]}
    sha_of = {}
    for method in p.methods:
        if method["name"] in wanted:
            sha = _method_subject(dict(method), p.work_dir, plugin_dirs)[3]
            if sha:
                sha_of[sha] = method["name"]
    by_method: dict[str, list] = {name: [] for name in wanted}
    for record in ResultsStore(p.results_dir).iter_records():
        name = sha_of.get((record.get("identity") or {}).get("checkpoint_sha256"))
        if name:
            by_method[name].append(record)
    return evaluate_control(p.control, by_method)


def format_plan(p: BenchPlan) -> str:
    lines = [f"benchmark {p.source}", f"  results: {p.results_dir}   work: {p.work_dir}   "
                                      f"executor: {p.executor.get('type', 'local')}"]
    for u in p.prepare:
        lines.append(f"  [{'done' if u.done else 'todo'}] {u.name} -> {u.manifest}")
    for u in p.pretrain:
        if u.stale:
            lines.append(f"  [stale] {u.name} -> {u.checkpoint}: trained with another config "
                         f"({len(u.stale)} difference{'s' if len(u.stale) > 1 else ''}):")
            lines.extend(_stale_lines(u, "            "))
            continue
        lines.append(f"  [{'done' if u.done else 'todo'}] {u.name} -> {u.checkpoint}")
    total = done = 0
    for u in p.evals:
        if u.note:
            lines.append(f"  [skip] {u.name}: {u.note}")
            continue
        n, d = u.n_records, u.n_done
        total += n or 0
        done += d or 0
        state = "done" if u.done else "todo"
        count = f"{'?' if d is None else d}/{'?' if n is None else n} records"
        after = f" (after pretrain {u.depends_on})" if u.depends_on and d is None else ""
        lines.append(f"  [{state}] {u.name}: {count}{after}")
    n_units = len(p.prepare) + len(p.pretrain) + len(p.runnable_evals)
    n_done = sum(u.done for u in p.units if getattr(u, "note", None) is None)
    lines.append(f"  {n_units} units ({n_done} done, {n_units - n_done} left); "
                 f"{done}/{total} evaluation records known to be recorded")
    if p.leaderboard:
        lines.append(f"  leaderboard -> {p.leaderboard.get('out')}")
    return "\n".join(lines)


# -- unit bodies (also what submitit jobs run) ----------------------------------------------

def _device(device: str) -> str:
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def prepare_job(unit: PrepareUnit) -> str:
    from place_bench.plugin_manager import get_plugin_manager
    from place_bench.plugins.datasets.synthetic.emulators import emulate
    from place_bench.registry import get_component

    get_plugin_manager()
    conflict = unit.native_conflict()
    if conflict:
        raise ValueError(conflict)
    if not (unit.root.is_dir() and any(unit.root.iterdir())):
        emulate(unit.native, unit.root, size=unit.size, seed=unit.seed, contrast_gain=unit.contrast_gain)
    result = get_component("dataset", unit.dataset).obj(**unit.settings).prepare(
        unit.root, unit.protocol, unit.out, check_images=unit.check_images)
    return str(result.manifest_path)


def pretrain_job(unit: PretrainUnit, plugin_dirs: Sequence[str] = ()) -> str:
    """Pretrain one method. Under a multi-task submitit job, set the torch.distributed variables."""
    from place_bench import api
    from place_bench.engine.pretrain import run_pretrain

    try:
        import submitit

        env = submitit.JobEnvironment()
        if env.num_tasks > 1:  # pragma: no cover - needs a cluster
            dist = submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
            os.environ.setdefault("LOCAL_RANK", str(dist.local_rank))
    except Exception:
        pass
    cfg = api.load_config(unit.config, unit.cfg_options, plugin_dirs)
    return str(run_pretrain(cfg, work_dir=unit.work_dir))


def eval_job(unit: EvalUnit, results_dir: str, work_dir: str, force: bool, device: str,
             plugin_dirs: Sequence[str] = (), log: Callable[[str], None] = print) -> dict:
    """One (method, task, dataset): an ``evaluate`` call; returns its counts."""
    from place_bench.engine.evaluate import evaluate, load_subject
    from place_bench.plugin_manager import get_plugin_manager
    from place_bench.results.store import ResultsStore

    get_plugin_manager(plugin_dirs)
    dataset = _open_dataset(unit.dataset, materialize=True)
    subject = load_subject(unit.subject, unit.subject_options or None, plugin_dirs, seed=unit.init_seed,
                           foreign=unit.foreign)
    summary = evaluate(subject, unit.task_cfg, dataset, ResultsStore(results_dir), fractions=unit.fractions,
                       seeds=unit.seeds, work_dir=Path(work_dir) / "eval_work", force=force,
                       device=_device(device), overrides=unit.overrides, log=log)
    errors = sorted({r.get("error") for r in summary.records if r.get("status") != "ok" and r.get("error")})
    return {"written": len(summary.written), "skipped": len(summary.skipped), "failed": len(summary.failed),
            "errors": errors}


# -- running --------------------------------------------------------------------------------

@dataclasses.dataclass
class BenchSummary:
    status: dict[str, str] = dataclasses.field(default_factory=dict)   # unit name -> done/skipped/failed/blocked/n-a
    errors: dict[str, str] = dataclasses.field(default_factory=dict)
    records_written: int = 0
    records_skipped: int = 0
    records_failed: int = 0
    wall_s: float = 0.0
    leaderboard: list[Path] = dataclasses.field(default_factory=list)
    control: Any = None          # a results.criteria.ControlReport when the config has a control section
    control_text: str = ""

    def count(self, state: str) -> int:
        return sum(1 for s in self.status.values() if s == state)

    @property
    def ok(self) -> bool:
        return not (self.count("failed") or self.count("blocked"))


class _Progress:
    """rich.progress on a terminal; plain lines otherwise."""

    def __init__(self, total: int, done: int, fancy: bool, pending: Mapping[str, int] | None = None):
        self.total, self.done, self.running = total, done, 0
        self.fancy = fancy
        self.t0 = time.perf_counter()
        self.finished_now = 0
        # the ETA sums, per unit kind (prepare / pretrain / eval), pending units x that kind's mean
        # duration so far: a pretraining takes minutes where an evaluation takes seconds
        self.pending = dict(pending or {})
        self.durations: dict[str, list[float]] = {}
        self.started_at: dict[str, tuple[str, float]] = {}
        self._progress = None
        if fancy:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
                TimeRemainingColumn

            self._progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TextColumn("{task.fields[state]}"), TimeElapsedColumn(),
                                      TextColumn("ETA"), TimeRemainingColumn())
            self._progress.start()
            self._task = self._progress.add_task("benchmark", total=total, completed=done, state="")

    def log(self, message: str) -> None:
        if self._progress is not None:
            self._progress.console.print(message, markup=False, highlight=False)
        else:
            print(message, flush=True)

    def _state(self, current: str = "") -> str:
        left = self.total - self.done
        return f"done {self.done}, running {self.running}, left {left}" + (f" | {current}" if current else "")

    def _eta(self) -> str:
        if not self.finished_now:
            return "?"
        overall = (time.perf_counter() - self.t0) / self.finished_now
        if not self.pending:
            return f"{overall * (self.total - self.done):.0f} s"
        seconds, untimed = 0.0, []
        for kind, left in self.pending.items():
            seen = self.durations.get(kind)
            if seen:
                seconds += left * sum(seen) / len(seen)
            elif left:
                untimed.append(f"{left} {kind}")
        # a kind not run yet has no pace of its own: say so rather than borrow another kind's
        return f"{seconds:.0f} s" + (f" + {', '.join(untimed)} not timed yet" if untimed else "")

    def start(self, name: str, kind: str | None = None) -> None:
        self.started_at[name] = (kind or "", time.perf_counter())
        self.running += 1
        if self._progress is not None:
            self._progress.update(self._task, state=self._state(name))
        else:
            self.log(f"[{self.done}/{self.total}] start {name}")

    def finish(self, name: str, state: str, started: bool = True, kind: str | None = None) -> None:
        """``started=False``: a unit settled without running (blocked); it does not count in the
        running tally or in the rate behind the ETA."""
        if started:
            self.running -= 1
            self.finished_now += 1
            kind, t = self.started_at.pop(name, ("", time.perf_counter()))
            if kind:
                self.durations.setdefault(kind, []).append(time.perf_counter() - t)
                self.pending[kind] = max(0, self.pending.get(kind, 0) - 1)
        elif kind:
            self.pending[kind] = max(0, self.pending.get(kind, 0) - 1)
        self.done += 1
        if self._progress is not None:
            self._progress.update(self._task, advance=1, state=self._state())
            self.log(f"{state}: {name}")
        else:
            self.log(f"[{self.done}/{self.total}] {state}: {name} ({self._state()}, ETA {self._eta()})")

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()


def _append_failure(work_dir: Path, unit, error: str) -> None:
    from place_bench.results.records import utc_now

    work_dir.mkdir(parents=True, exist_ok=True)
    entry = {"time": utc_now(), "kind": unit.kind, "unit": unit.name, "error": error,
             "unit_spec": json.loads(json.dumps(dataclasses.asdict(unit), default=str))}
    with open(work_dir / "failures.jsonl", "a") as f:
        f.write(json.dumps(entry) + "\n")


def _make_executor(executor_cfg: dict, folder: Path, extra: Mapping[str, Any] | None = None):
    import submitit

    params = {k: v for k, v in executor_cfg.items() if k not in ("type", "folder", "pretrain")}
    params.update(extra or {})
    kind = executor_cfg.get("type")
    if kind == "submitit_local":
        ex = submitit.LocalExecutor(folder=str(folder))
    else:
        ex = submitit.AutoExecutor(folder=str(folder))
    if params:
        ex.update_parameters(**params)
    return ex


class StaleCheckpointError(RuntimeError):
    """A pretraining's checkpoint exists but was trained with another config."""


def run(p: BenchPlan, plugin_dirs: Sequence[str] = (), fancy: bool | None = None,
        write_board: bool = True, retrain_stale: bool = False) -> BenchSummary:
    """Run the pending units of ``p`` (see the module doc) and return the summary.

    A stale pretraining (``p.stale``: its checkpoint was trained with another config) raises
    :class:`StaleCheckpointError` before anything runs, unless ``retrain_stale``: then its
    run folder is moved aside to ``<folder>.stale-<UTC time>`` and its records to
    ``<results>/.superseded/<that name>/`` (kept, never deleted, no longer on the leaderboard),
    and the method is trained again.
    """
    if p.stale and not retrain_stale:
        lines = [line for u in p.stale for line in (f"  {u.name}: {u.checkpoint}", *_stale_lines(u, "      "))]
        raise StaleCheckpointError(
            "these pretrainings' checkpoints were trained with another config than the benchmark's now:\n"
            + "\n".join(lines)
            + "\nEvaluating them would file their results under a recipe they were not trained with. "
              "Retrain them with --retrain-stale (their folders are moved aside, not deleted), "
              "or give the changed method a new name.")
    for unit in p.stale if retrain_stale else ():
        from place_bench.results.store import ResultsStore

        old_sha = _checkpoint_sha(unit.checkpoint)
        aside = unit.work_dir.with_name(f"{unit.work_dir.name}.stale-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
        unit.work_dir.rename(aside)
        if old_sha:
            ResultsStore(p.results_dir).set_aside(old_sha, aside.name)
    t0 = time.perf_counter()
    if fancy is None:
        fancy = sys.stdout.isatty()
    summary = BenchSummary()
    kind = p.executor.get("type", "local")
    folder = Path(p.executor.get("folder") or p.work_dir / "submitit")
    for unit in p.evals:
        if unit.note:
            summary.status[unit.name] = "n/a"
    units = [*p.prepare, *p.pretrain, *p.runnable_evals]
    pending_pre = [u for u in units if u.kind != "eval" and not u.done]
    pending_kinds: dict[str, int] = {}
    for u in units:
        if not u.done:
            pending_kinds[u.kind] = pending_kinds.get(u.kind, 0) + 1
    progress = _Progress(len(units), sum(1 for u in units if u.done), fancy, pending_kinds)
    for u in units:
        if u.done:
            summary.status[u.name] = "skipped"
    for unit in p.evals:
        if unit.note:
            progress.log(f"skip {unit.name}: {unit.note}")
    failed_methods: set[str] = set()
    try:
        # 1. data and pretraining, in order (evaluations depend on them)
        for unit in pending_pre:
            progress.start(unit.name, unit.kind)
            try:
                if kind == "local":
                    prepare_job(unit) if unit.kind == "prepare" else pretrain_job(unit, plugin_dirs)
                else:
                    extra = p.executor.get("pretrain") if unit.kind == "pretrain" else None
                    ex = _make_executor(p.executor, folder, extra)
                    job = ex.submit(prepare_job, unit) if unit.kind == "prepare" else \
                        ex.submit(pretrain_job, unit, list(plugin_dirs))
                    job.result()
                summary.status[unit.name] = "done"
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                summary.status[unit.name] = "failed"
                summary.errors[unit.name] = error
                _append_failure(p.work_dir, unit, error)
                if os.environ.get("PLACE_BENCH_DEBUG"):
                    traceback.print_exc()
                if unit.kind == "pretrain":
                    failed_methods.add(unit.method)
            progress.finish(unit.name, summary.status[unit.name])
        # 2. evaluations
        todo = []
        for unit in p.runnable_evals:
            if unit.depends_on in failed_methods:
                summary.status[unit.name] = "blocked"
                summary.errors[unit.name] = f"pretraining of {unit.depends_on} failed"
                progress.finish(unit.name, "blocked", started=False, kind=unit.kind)
            elif unit.done:
                continue  # counted as skipped above
            else:
                todo.append(unit)
        args = (str(p.results_dir), str(p.work_dir), p.force, p.device, list(plugin_dirs))

        def settle(unit: EvalUnit, result: dict | None, exc: BaseException | None) -> None:
            if exc is not None:
                error = f"{type(exc).__name__}: {exc}"
                summary.status[unit.name] = "failed"
                summary.errors[unit.name] = error
                _append_failure(p.work_dir, unit, error)
                if os.environ.get("PLACE_BENCH_DEBUG"):
                    traceback.print_exc()
            else:
                summary.records_written += result["written"]
                summary.records_skipped += result["skipped"]
                summary.records_failed += result["failed"]
                if result["failed"]:
                    summary.status[unit.name] = "failed"
                    summary.errors[unit.name] = "; ".join(result["errors"]) or "failed records"
                elif result["written"]:
                    summary.status[unit.name] = "done"
                else:
                    summary.status[unit.name] = "skipped"
            progress.finish(unit.name, summary.status[unit.name])

        if kind == "local":
            for unit in todo:
                progress.start(unit.name, unit.kind)
                try:
                    settle(unit, eval_job(unit, *args, log=progress.log), None)
                except Exception as exc:
                    settle(unit, None, exc)
        elif todo:
            ex = _make_executor(p.executor, folder)
            jobs = []
            for unit in todo:
                jobs.append((unit, ex.submit(eval_job, unit, *args)))
                progress.start(unit.name, unit.kind)
            waiting = list(jobs)
            while waiting:
                still = []
                for unit, job in waiting:
                    if not job.done():
                        still.append((unit, job))
                        continue
                    try:
                        settle(unit, job.result(), None)
                    except Exception as exc:
                        settle(unit, None, exc)
                waiting = still
                if waiting:
                    time.sleep(0.5)
    finally:
        progress.stop()
    if write_board and p.leaderboard:
        from place_bench.results.leaderboard import FORMATS, write_leaderboard

        try:
            summary.leaderboard = write_leaderboard(
                [p.results_dir], p.leaderboard.get("out") or p.work_dir / "leaderboard",
                formats=tuple(p.leaderboard.get("formats") or FORMATS),
                all_metrics=bool(p.leaderboard.get("all_metrics", False)),
                include_reference=bool(p.leaderboard.get("include_reference", True)))
        except Exception as exc:
            summary.errors["leaderboard"] = f"{type(exc).__name__}: {exc}"
    if p.control:
        from place_bench.io import atomic_write_text
        from place_bench.results.criteria import format_report

        try:
            summary.control = control_report(p, plugin_dirs)
            out = Path(p.control.get("out") or p.work_dir / "control.json")
            atomic_write_text(out, json.dumps(summary.control.to_json(), indent=2) + "\n")
            summary.control_text = format_report(summary.control, p.control.get("title", "control")) + f"\n({out})"
        except Exception as exc:
            summary.errors["control"] = f"{type(exc).__name__}: {exc}"
    summary.wall_s = time.perf_counter() - t0
    return summary


def format_summary(summary: BenchSummary, fancy: bool = False) -> str | Any:
    states = ("done", "skipped", "failed", "blocked", "n/a")
    counts = {s: summary.count(s) for s in states}
    if fancy:
        from rich.table import Table

        table = Table(title="benchmark summary")
        for col in ("units", *states, "records written", "wall time"):
            table.add_column(col, justify="right")
        table.add_row(str(len(summary.status)), *(str(counts[s]) for s in states), str(summary.records_written),
                      f"{summary.wall_s:.1f} s")
        return table
    lines = ["benchmark summary: " + ", ".join(f"{counts[s]} {s}" for s in states)
             + f" ({len(summary.status)} units); {summary.records_written} records written, "
             f"{summary.records_failed} failed; wall time {summary.wall_s:.1f} s"]
    for name, error in summary.errors.items():
        lines.append(f"  {summary.status.get(name, 'error')}: {name}: {error}")
    if summary.control_text:
        lines.append(summary.control_text)
    if summary.leaderboard:
        lines.append("leaderboard: " + ", ".join(str(x) for x in summary.leaderboard if x.suffix != ".png")
                     + f" (+{sum(1 for x in summary.leaderboard if x.suffix == '.png')} png)")
    return "\n".join(lines)
