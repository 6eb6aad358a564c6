"""Built-in PLACE-Bench plugins (imported as ``place_bench.plugins``).

Each module registers its components in one ``place_bench_register`` hook and is
listed under the ``place_bench`` entry-point group in ``pyproject.toml``, the same
way a third-party plugin package is found.
"""
