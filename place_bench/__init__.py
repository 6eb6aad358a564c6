"""PLACE-Bench: a plugin-based, config-driven benchmark suite for medical
vision-language pretraining on chest X-rays.

Importing the package is cheap: registries fill when a plugin manager is first
asked for (``place_bench.plugin_manager.get_plugin_manager``), not at import.
"""

__version__ = "0.1.0"
