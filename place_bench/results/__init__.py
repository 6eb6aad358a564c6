"""Results registry: record schema (``records``), the store (``store``), published
reference numbers (``reference``) and the leaderboard (``leaderboard``).

Importing this package stays light (no torch, no matplotlib until a PNG is drawn).
"""

from place_bench.results.records import (
    IDENTITY_FIELDS,
    SCHEMA_VERSION,
    RecordError,
    make_record,
    make_reference_record,
    record_key,
    validate_record,
)
from place_bench.results.reference import load_reference_records
from place_bench.results.store import Problem, ResultsStore, default_results_dir

__all__ = [
    "IDENTITY_FIELDS", "SCHEMA_VERSION", "Problem", "RecordError", "ResultsStore", "default_results_dir",
    "load_reference_records", "make_record", "make_reference_record", "record_key", "validate_record",
]
