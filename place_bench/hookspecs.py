"""Every hook a PLACE-Bench plugin can implement, in one module (pytest style).

A plugin is a module (or any object) with functions marked ``@hookimpl``. It is
found in one of two ways, which built-in and third-party plugins share:

* an entry point in the group ``place_bench`` of an installed distribution::

      [project.entry-points.place_bench]
      my_encoders = "my_package.encoders"

* a folder of plugin modules given on the command line
  (``place-bench --plugin-dir DIR ...``), in a config (``plugin_dirs = [DIR]``) or
  in the environment variable ``PLACE_BENCH_PLUGIN_PATH`` (``os.pathsep``-separated).
  Each ``*.py`` file and each sub-folder holding an ``__init__.py`` is one plugin,
  named after the file or folder.

Example plugin module::

    from place_bench.hookspecs import hookimpl

    class MyEncoder(torch.nn.Module): ...

    @hookimpl
    def place_bench_register(registrar):
        registrar.add("image_encoder", "my_encoder", MyEncoder)
"""

from __future__ import annotations

import pluggy

PROJECT_NAME = "place_bench"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def place_bench_register(registrar):
    """Register this plugin's components.

    :param registrar: a :class:`place_bench.plugin_manager.Registrar` bound to this
        plugin; ``registrar.add(kind, name, obj)`` puts ``obj`` into the ``kind``
        registry (``image_encoder``, ``text_encoder``, ``head``, ``objective``,
        ``task``, ``dataset``, ``metric``, ``checkpoint_adapter``) under ``name``.

    Called once per plugin, when the plugin manager is first built. A name that
    another plugin already registered for the same kind is an error naming both
    plugins. An exception raised here is reported with the plugin's name; the
    plugin is then skipped (its partial registrations are removed), or the whole
    load fails under ``--strict``.
    """


@hookspec
def place_bench_config_dirs():
    """Return folders (``str`` or ``Path``) holding configs this plugin ships.

    ``place-bench`` resolves a config name that is not an existing path against
    the built-in ``configs/`` folder first, then these folders, in plugin order,
    so a plugin package can ship configs that users name like the built-in ones
    (``place-bench config show pretrain/my_method``).
    """


@hookspec
def place_bench_add_data_commands(subparsers):
    """Add sub-commands to ``place-bench data``.

    :param subparsers: the ``argparse`` sub-parsers of ``place-bench data``; add a
        parser and set its ``func`` default to a callable taking the parsed args and
        returning an exit code. The synthetic world adds ``data synth`` this way.

    The command-line parser is built before ``--plugin-dir`` is read, so commands
    come from installed plugins (entry points) and ``PLACE_BENCH_PLUGIN_PATH``.
    """
