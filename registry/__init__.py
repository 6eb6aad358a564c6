"""Data of the results registry (reference records), installed as ``place_bench.registry_data``."""
