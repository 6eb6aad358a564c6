"""Whole-test-set evaluation: metrics and bootstrap statistics.

* :mod:`.metrics`   – AUROC, accuracy, F1/precision/recall, retrieval P@K/Hit@K,
  GLoRIA's per-class z-normalization; pure functions on whole test-set arrays.
* :mod:`.bootstrap` – seeded percentile bootstrap CIs, paired bootstrap tests
  between two systems scored on the same items, mean ± s.d. over seeds.

Metrics are never computed per batch and averaged: callers collect the scores of
the whole test set first, then call a metric once (or a bootstrap around it).
"""
