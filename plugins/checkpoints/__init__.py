"""Checkpoint adapters: checkpoints of public method repositories as suite models.

One module per source (``mgca``, ``gloria``, ``convirt``, ``benchx``), each registering
declarative :class:`~place_bench.model.adapters.CheckpointAdapter` objects under kind
``checkpoint_adapter``; ``_naming`` holds the key-naming facts they share and ``heads`` the
projection head that reproduces foreign heads layer for layer.
"""
