"""Finds plugins and lets them register their components.

Plugins come from the ``place_bench`` entry-point group (built-in and third-party
alike) and from plugin folders (``--plugin-dir``, the ``plugin_dirs`` config key,
``PLACE_BENCH_PLUGIN_PATH``). The hooks they may implement are documented in
:mod:`place_bench.hookspecs`.

Failure policy: a plugin that raises while importing or registering is reported
by name and skipped (a :class:`PluginLoadWarning`), or stops the load with
:class:`PluginLoadError` when ``strict``. Two plugins registering the same
component name always stop the load (:class:`~place_bench.registry.DuplicateComponentError`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import sys
import traceback
import warnings
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any, Iterable

import pluggy

from place_bench import hookspecs
from place_bench import registry as registries

ENTRY_POINT_GROUP = "place_bench"
PLUGIN_PATH_ENV = "PLACE_BENCH_PLUGIN_PATH"


class PluginLoadError(RuntimeError):
    """A plugin failed to import or register (raised under ``strict``)."""


class PluginLoadWarning(UserWarning):
    """A plugin failed to import or register and was skipped."""


@dataclass(frozen=True)
class PluginFailure:
    name: str
    origin: str
    error: str
    traceback: str

    def message(self) -> str:
        return f"plugin {self.name!r} ({self.origin}) failed to load: {self.error}"


class Registrar:
    """What a plugin's ``place_bench_register`` hook receives: registration on its behalf."""

    def __init__(self, plugin: str):
        self.plugin = plugin

    def add(self, kind: str, name: str, obj: Any) -> Any:
        """Register ``obj`` as ``name`` in the ``kind`` registry; returns ``obj``."""
        registries.add_component(kind, name, obj, self.plugin)
        return obj


class PluginManager:
    """The suite's pluggy plugin manager plus the record of where each plugin came from."""

    def __init__(self, strict: bool = False):
        self.strict = strict
        self.pluggy = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pluggy.add_hookspecs(hookspecs)
        self.origins: dict[str, str] = {}
        self.failures: list[PluginFailure] = []
        self._registered: set[str] = set()
        self._loaded_dirs: list[Path] = []

    # -- discovery ---------------------------------------------------------------
    def load_entry_points(self) -> None:
        """Import every ``place_bench`` entry point and register it as a plugin."""
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist = getattr(ep.dist, "name", None) or "?"
            origin = f"entry point {ep.name} = {ep.value} in distribution {dist}"
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken plugin must not take the suite down
                self._fail(ep.name, origin, exc)
                continue
            self._add_plugin(ep.name, plugin, origin)

    def load_dirs(self, dirs: Iterable[str | os.PathLike]) -> None:
        """Import every plugin module in each folder (files ``*.py`` and packages)."""
        for folder in dirs:
            folder = Path(folder).expanduser().resolve()
            if folder in self._loaded_dirs:
                continue
            if not folder.is_dir():
                raise PluginLoadError(f"plugin folder {str(folder)!r} does not exist or is not a folder")
            self._loaded_dirs.append(folder)
            for path in sorted(folder.iterdir()):
                if path.name.startswith(("_", ".")):
                    continue
                if path.is_file() and path.suffix == ".py":
                    name, init = path.stem, path
                elif path.is_dir() and (path / "__init__.py").is_file():
                    name, init = path.name, path / "__init__.py"
                else:
                    continue
                origin = f"plugin folder {folder}"
                try:
                    plugin = _import_from_path(name, init, folder, package=init.name == "__init__.py")
                except Exception as exc:
                    self._fail(name, origin, exc)
                    continue
                self._add_plugin(name, plugin, origin)

    def load_env_dirs(self) -> None:
        value = os.environ.get(PLUGIN_PATH_ENV, "")
        self.load_dirs(p for p in value.split(os.pathsep) if p)

    # -- registration --------------------------------------------------------------
    def _add_plugin(self, name: str, plugin: ModuleType | Any, origin: str) -> None:
        if name in self.origins:
            raise PluginLoadError(
                f"two plugins are named {name!r}: {self.origins[name]} and {origin}; rename one"
            )
        try:
            self.pluggy.register(plugin, name=name)  # validates hooks that have a spec
        except Exception as exc:
            self._fail(name, origin, exc)
            return
        try:
            self.pluggy.check_pending()  # a marked hook with no spec: a misspelt hook name
        except pluggy.PluginValidationError as exc:
            self.pluggy.unregister(name=name)
            self._fail(name, origin, exc)
            return
        self.origins[name] = origin
        self._register_components(name)

    def _register_components(self, name: str) -> None:
        """Call ``place_bench_register`` of plugin ``name`` alone, so that its
        registrations and failures are attributed to it."""
        if name in self._registered:
            return
        self._registered.add(name)
        registrar = Registrar(name)
        for impl in self.pluggy.hook.place_bench_register.get_hookimpls():
            if impl.plugin_name != name:
                continue
            kwargs = {"registrar": registrar}
            try:
                impl.function(*(kwargs[arg] for arg in impl.argnames))
            except registries.DuplicateComponentError:
                raise
            except Exception as exc:
                registries.remove_plugin_components(name)
                self.pluggy.unregister(name=name)
                self._fail(name, self.origins.pop(name), exc)

    def _fail(self, name: str, origin: str, exc: BaseException) -> None:
        failure = PluginFailure(
            name=name,
            origin=origin,
            error=f"{type(exc).__name__}: {exc}",
            traceback="".join(traceback.format_exception(exc)),
        )
        if self.strict:
            raise PluginLoadError(failure.message()) from exc
        self.failures.append(failure)
        warnings.warn(failure.message() + " (skipped; --strict makes this an error)", PluginLoadWarning, stacklevel=3)

    # -- queries ------------------------------------------------------------------------
    def config_dirs(self) -> list[Path]:
        """Config folders contributed by plugins (``place_bench_config_dirs``), in order."""
        found: list[Path] = []
        for result in self.pluggy.hook.place_bench_config_dirs():
            for item in [result] if isinstance(result, (str, os.PathLike)) else result or []:
                found.append(Path(item))
        return found

    def plugin_of(self, kind: str, name: str) -> str:
        return registries.get_component(kind, name).plugin


def _import_from_path(name: str, init: Path, folder: Path, package: bool) -> ModuleType:
    """Import a plugin file or package under a private, collision-free module name."""
    digest = hashlib.sha1(str(folder).encode()).hexdigest()[:8]
    safe = re.sub(r"\W", "_", name)
    module_name = f"_place_bench_dir_plugin_{digest}_{safe}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(
        module_name, init, submodule_search_locations=[str(init.parent)] if package else None
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {init}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # relative imports inside a package plugin need this
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


_MANAGER: PluginManager | None = None


def get_plugin_manager(plugin_dirs: Iterable[str | os.PathLike] = (), strict: bool | None = None) -> PluginManager:
    """The process-wide plugin manager, built on first use.

    Loads entry points and ``PLACE_BENCH_PLUGIN_PATH`` once; ``plugin_dirs`` given on
    any call are loaded if not loaded yet. ``strict`` applies from the call that sets it.
    """
    global _MANAGER
    if _MANAGER is None:
        manager = PluginManager(strict=bool(strict))
        _MANAGER = manager
        try:
            manager.load_entry_points()
            manager.load_env_dirs()
        except BaseException:
            reset_plugin_manager()
            raise
    elif strict is not None:
        _MANAGER.strict = strict
    _MANAGER.load_dirs(plugin_dirs)
    return _MANAGER


def reset_plugin_manager() -> None:
    """Forget all plugins and empty the registries (tests use this between cases)."""
    global _MANAGER
    _MANAGER = None
    registries.clear()
