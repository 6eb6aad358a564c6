"""Load, merge and validate configs (mmengine ``Config`` with ``_base_`` inheritance).

Conventions checked by :func:`validate_config`:

* Top-level keys are the suite's sections (:data:`SUITE_SECTIONS`) or arguments of
  mmengine's ``Runner``; a name starting with ``_`` is a config-local variable
  (``_img_size = 224``) and is not checked.
* Inside the suite's sections, a dict with ``type=NAME`` under a key named after a component kind
  (``image_encoder``, ``text_encoder``, ``objectives`` holding a list, any key
  ending in ``_projection`` or ``_head`` for heads) must name a registered
  component, and its other keys must be arguments of that component: an unknown
  key, or a required argument left out, is an error.
* The ``model`` section is checked against the model's constructor the same way.

Every error is one line naming the key and the file that set it (or
``--cfg-options``).
"""

from __future__ import annotations

import ast
import difflib
import inspect
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from mmengine.config import Config, ConfigDict

from place_bench import registry as registries

#: Sections the suite itself reads, beyond mmengine Runner's arguments.
SUITE_SECTIONS = {
    "model": "the vision-language model: encoders, projection heads, objectives",
    "plugin_dirs": "extra plugin folders loaded before anything is built",
    "data": "datasets and manifests",
    "pretrain": "pretraining engine settings: amp, checkpoint_interval, max_keep_ckpts, log_interval",
    "task": "a downstream task and its protocol",
    "tasks": "several downstream tasks",
    "checkpoint": "a checkpoint to start from or evaluate",
    "results_dir": "where result records are written",
    "method": "the method card: name, reference, notes",
    "benchmark": "benchmark runner: data, methods, tasks, executor, leaderboard (place_bench.engine.bench)",
    "seed": "the random seed",
    "seeds": "the list of seeds of a protocol",
    "fractions": "the label fractions of a protocol (shares of the train split in (0, 1])",
    "device": "cpu, cuda or auto",
}

#: Keys mmengine's Runner reads from its ``cfg`` rather than its arguments.
RUNNER_CFG_KEYS = {"model_wrapper_cfg"}

#: A key in a config dict -> the component kind its ``type`` names.
_SLOT_KINDS = {
    "image_encoder": "image_encoder",
    "text_encoder": "text_encoder",
    "objective": "objective",
    "objectives": "objective",
    "task": "task",
    "tasks": "task",
    "dataset": "dataset",
    "datasets": "dataset",
    "metric": "metric",
    "metrics": "metric",
}


class ConfigError(ValueError):
    """A config file or override is wrong; the message names the key and the file."""


def runner_arguments() -> set[str]:
    from mmengine.runner import Runner

    return {name for name in inspect.signature(Runner.__init__).parameters if name != "self"}


def builtin_configs_root() -> Path:
    """The suite's ``configs/`` folder (the repository's, or the installed copy)."""
    source_tree = Path(__file__).resolve().parent.parent / "configs"
    if source_tree.is_dir():
        return source_tree
    import importlib.util

    spec = importlib.util.find_spec("place_bench.configs")
    if spec is not None and spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0])
    raise ConfigError("the built-in configs folder is missing from this installation")


def resolve_config_path(name: str | os.PathLike, extra_dirs: Iterable[Path] = ()) -> Path:
    """A config path as given, or a name resolved against ``configs/`` then plugin config folders.

    ``pretrain/convirt_synthetic`` and ``pretrain/convirt_synthetic.py`` both resolve.
    """
    path = Path(name)
    if path.is_file():
        return path.resolve()
    roots = [builtin_configs_root(), *extra_dirs]
    candidates = [path] if path.suffix else [path, path.with_suffix(".py")]
    for root in roots:
        for candidate in candidates:
            if (root / candidate).is_file():
                return (root / candidate).resolve()
    searched = ", ".join(str(r) for r in roots)
    raise ConfigError(f"config {str(name)!r} not found: not a file, and not under {searched}")


#: A ``_base_`` entry starting with this prefix names a file under the suite's own ``configs/``
#: folder, so a config shipped in an installed plugin package can inherit, e.g.,
#: ``place_bench::_base_/models/tiny_vit_bert.py`` wherever the suite is installed.
BUILTIN_PREFIX = "place_bench::"


def _base_node(path: Path) -> tuple[ast.Assign | None, list[str]]:
    """The ``_base_ = ...`` statement of a config file and the names it lists."""
    try:
        tree = ast.parse(path.read_text(), filename=str(path))
    except SyntaxError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: syntax error: {exc.msg}") from None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "_base_" for t in node.targets
        ):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                return None, []
            return node, [value] if isinstance(value, str) else list(value)
    return None, []


def _resolve_base(path: Path, name: str) -> Path:
    if name.startswith(BUILTIN_PREFIX):
        return (builtin_configs_root() / name[len(BUILTIN_PREFIX):]).resolve()
    return (path.parent / name).resolve()


def base_files(path: Path) -> list[Path]:
    """The ``_base_`` files a config file names directly: relative to it, or under the suite's
    ``configs/`` for names starting with :data:`BUILTIN_PREFIX`."""
    return [_resolve_base(path, n) for n in _base_node(path)[1]]


def _needs_rewrite(path: Path) -> bool:
    """Whether ``path`` or a file in its ``_base_`` chain names a :data:`BUILTIN_PREFIX` base."""
    names = _base_node(path)[1]
    return any(n.startswith(BUILTIN_PREFIX) for n in names) or any(
        _needs_rewrite(b) for b in base_files(path) if b.is_file())


def _rewritten(path: Path, folder: Path) -> Path:
    """A copy of ``path`` in ``folder`` whose ``_base_`` entries are absolute paths (themselves
    rewritten when their chain needs it), for mmengine, which knows no :data:`BUILTIN_PREFIX`."""
    node, _ = _base_node(path)
    bases = []
    for base in base_files(path):
        bases.append(str(_rewritten(base, folder) if base.is_file() and _needs_rewrite(base) else base))
    lines = path.read_text().splitlines(keepends=True)
    if node is not None:
        lines[node.lineno - 1:node.end_lineno] = [f"_base_ = {bases!r}\n"]
    out = folder / f"{len(list(folder.iterdir()))}_{path.name}"
    out.write_text("".join(lines))
    return out


def load_config(
    name: str | os.PathLike,
    cfg_options: Mapping[str, Any] | None = None,
    extra_dirs: Iterable[Path] = (),
    validate: bool = True,
    partial: bool = False,
) -> Config:
    """Load a config with its ``_base_`` chain, apply ``cfg_options`` (dotted keys), validate.

    The plugins a config needs (``plugin_dirs``) must be loaded before validation:
    :func:`place_bench.api.load_config` does all of it in the right order.
    """
    path = resolve_config_path(name, extra_dirs)
    cfg = _read(path)
    if cfg_options:
        try:
            cfg.merge_from_dict(dict(cfg_options))
        except Exception as exc:
            raise ConfigError(f"--cfg-options: cannot apply {dict(cfg_options)}: {exc}") from None
    cfg._place_bench_source = str(path)  # type: ignore[attr-defined]
    cfg._place_bench_overrides = sorted(cfg_options or {})  # type: ignore[attr-defined]
    if validate:
        validate_config(cfg, partial=partial)
    return cfg


def _read(path: Path) -> Config:
    for base in base_files(path):
        if not base.is_file():
            raise ConfigError(f"{path}: _base_ file {str(base)!r} does not exist")
    try:
        if _needs_rewrite(path):
            import tempfile

            with tempfile.TemporaryDirectory(prefix="place_bench_cfg_") as tmp:
                cfg = Config.fromfile(str(_rewritten(path, Path(tmp))))
            object.__setattr__(cfg, "_filename", str(path))  # the user's file, not the rewritten copy
            return cfg
        return Config.fromfile(str(path))
    except ConfigError:
        raise
    except SyntaxError as exc:
        raise ConfigError(f"{exc.filename or path}:{exc.lineno}: syntax error: {exc.msg}") from None
    except Exception as exc:
        raise ConfigError(f"{path}: cannot load config: {type(exc).__name__}: {exc}") from None


# -- validation -------------------------------------------------------------------------

def validate_config(cfg: Config, model_factory: Callable | None = None, partial: bool = False) -> None:
    """Check keys as described in the module docstring; raise :class:`ConfigError`.

    ``partial`` skips the missing-key checks, for ``_base_`` files that are only
    meant to be combined with others.
    """
    source = Path(getattr(cfg, "_place_bench_source", cfg.filename or "<config>"))
    overrides = list(getattr(cfg, "_place_bench_overrides", []))
    locate = _Locator(source, overrides, partial)

    allowed = set(SUITE_SECTIONS) | runner_arguments() | RUNNER_CFG_KEYS
    for key in cfg.keys():
        if key.startswith("_") or key in allowed:
            continue
        raise ConfigError(f"{locate(key)}: unknown top-level key '{key}'{_did_you_mean(key, allowed)}")

    if "model" in cfg and isinstance(cfg.model, Mapping) and "type" not in cfg.model:
        if model_factory is None:
            from place_bench.model.vlm import VisionLanguageModel as model_factory
        _check_arguments(cfg.model, model_factory, "model", "model", "VisionLanguageModel", locate)

    # Runner sections (train_dataloader, ...) hold mmengine / OpenMMLab types that
    # their own registries check; only the suite's sections are walked here.
    for key in cfg.keys():
        if key in SUITE_SECTIONS:
            _walk(cfg[key], key, locate, slot_kind=_slot_kind(key))


def _slot_kind(key: str) -> str | None:
    if key in _SLOT_KINDS:
        return _SLOT_KINDS[key]
    if key.endswith(("_projection", "_head")):
        return "head"
    return None


def _walk(node: Any, path: str, locate: "_Locator", slot_kind: str | None) -> None:
    if isinstance(node, Mapping):
        if slot_kind is not None and "type" in node and isinstance(node["type"], str):
            _check_component(node, path, slot_kind, locate)
        for key, value in node.items():
            _walk(value, f"{path}.{key}", locate, _slot_kind(str(key)))
    elif isinstance(node, (list, tuple)):
        for i, item in enumerate(node):
            _walk(item, f"{path}.{i}", locate, slot_kind)


def _check_component(node: Mapping, path: str, kind: str, locate: "_Locator") -> None:
    name = node["type"]
    try:
        info = registries.get_component(kind, name)
    except registries.UnknownComponentError as exc:
        raise ConfigError(f"{locate(path + '.type')}: {path}.type: {exc}") from None
    _check_arguments(node, info.obj, path, kind, name, locate)


def _check_arguments(node: Mapping, factory: Callable, path: str, kind: str, name: str, locate: "_Locator") -> None:
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    named = {
        n: p
        for n, p in params.items()
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    unknown = [key for key in node if key != "type" and key not in named]
    if accepts_any:
        # A component that forwards **kwargs (to timm, say) can name the ones its
        # target would reject through ``unknown_config_keys(cfg) -> list[str]``.
        checker = getattr(factory, "unknown_config_keys", None)
        unknown = list(checker(dict(node))) if checker else []
    for key in unknown:
        accepted = ", ".join(n for n in named if n != "self")
        more = " and the keyword arguments of its target" if accepts_any else ""
        raise ConfigError(
            f"{locate(f'{path}.{key}')}: unknown key '{path}.{key}' for {kind} {name!r}"
            f"{_did_you_mean(key, named)}; accepted keys: {accepted}{more}"
        )
    for param_name, param in named.items():
        if locate.partial:
            break
        if param.default is inspect.Parameter.empty and param_name not in node:
            raise ConfigError(
                f"{locate(path)}: missing key '{path}.{param_name}' required by {kind} {name!r}"
            )


def _did_you_mean(key: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(options), n=2, cutoff=0.6)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


class _Locator:
    """Names the file (or ``--cfg-options``) that introduced a dotted key."""

    def __init__(self, source: Path, overrides: Sequence[str], partial: bool = False):
        self.partial = partial
        self.source = source
        self.overrides = overrides
        self._cache: dict[Path, dict] = {}

    def __call__(self, key_path: str) -> str:
        for override in self.overrides:
            if key_path == override or key_path.startswith(override + ".") or override.startswith(key_path + "."):
                return f"--cfg-options {override}"
        return str(self._introducer(self.source, key_path) or self.source)

    def _introducer(self, path: Path, key_path: str) -> Path | None:
        if not self._has(path, key_path):
            return None
        for base in base_files(path):
            found = self._introducer(base, key_path)
            if found is not None:
                return found
        return path

    def _has(self, path: Path, key_path: str) -> bool:
        if path not in self._cache:
            try:
                self._cache[path] = Config.fromfile(str(path)).to_dict()
            except Exception:
                return False
        node: Any = self._cache[path]
        for part in key_path.split("."):
            if isinstance(node, Mapping) and part in node:
                node = node[part]
            elif isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                return False
        return True


def to_plain(cfg: Config | ConfigDict | Mapping) -> dict:
    """The config as plain dicts and lists (for model construction, JSON cards, hashing)."""

    def plain(node: Any) -> Any:
        if isinstance(node, Mapping):
            return {str(k): plain(v) for k, v in node.items()}
        if isinstance(node, (list, tuple)):
            return [plain(v) for v in node]
        return node

    return plain(cfg.to_dict() if isinstance(cfg, Config) else cfg)
