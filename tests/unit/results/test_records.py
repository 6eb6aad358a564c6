"""Record schema: keys, round trip, validation messages."""

from __future__ import annotations

import copy
import hashlib
import json

import pytest

from place_bench.results.records import RecordError, make_record, record_key, validate_record

IDENTITY = {"checkpoint_sha256": "a" * 64, "task": "cls_linear", "dataset": "chexpert", "protocol": "suite",
            "variant": None, "fraction": 0.01, "seed": 0}


def test_key_is_stable_across_runs_and_field_order():
    # A fixed value: changing the canonical form would orphan every stored record.
    canonical = ('{"checkpoint_sha256":"' + "a" * 64 + '","dataset":"chexpert","fraction":0.01,'
                 '"protocol":"suite","seed":0,"task":"cls_linear","variant":null}')
    assert record_key(IDENTITY) == hashlib.sha256(canonical.encode()).hexdigest()
    assert record_key(IDENTITY) == "aff1a26d745845e9694a84db7f1778fa93c531769ffc5bd15b7e8056b565e109"
    assert record_key(dict(reversed(list(IDENTITY.items())))) == record_key(IDENTITY)
    assert record_key(dict(IDENTITY, fraction=1)) == record_key(dict(IDENTITY, fraction=1.0))
    assert record_key(dict(IDENTITY, seed=1)) != record_key(IDENTITY)
    assert record_key(dict(IDENTITY, variant="mgca")) != record_key(IDENTITY)


def test_key_names_a_missing_identity_field():
    with pytest.raises(RecordError, match="identity.seed"):
        record_key({k: v for k, v in IDENTITY.items() if k != "seed"})


def test_round_trip(make_measured):
    record = make_measured(extra={"prompts": ["a", "b"]}, overrides={"task.lr": 0.1})
    assert record["key"] == record_key(record["identity"])
    assert record["checkpoint"]["label"] == "PLACE"
    assert record["started_at"].endswith("+00:00")
    again = json.loads(json.dumps(record))
    assert validate_record(again) == record


def test_bare_number_metric_is_wrapped(make_measured):
    record = make_measured()
    record2 = make_record(**{**_args(record), "metrics": {"acc": 0.5}, "primary_metric": "acc"})
    assert record2["metrics"]["acc"]["value"] == 0.5 and record2["metrics"]["acc"]["ci_low"] is None


def _args(record):
    return dict(checkpoint=record["checkpoint"], method=record["method"], task=record["task"],
                dataset=record["dataset"], protocol=record["protocol"], seed=record["seed"],
                metrics=record["metrics"], primary_metric=record["primary_metric"], n_test=record["n_test"],
                config=record["config"], manifest=record["manifest"], fraction=record["fraction"],
                code_version="x", packages={})


@pytest.mark.parametrize("field, mutate", [
    ("n_test", lambda r: r.pop("n_test")),
    ("manifest.fingerprint", lambda r: r["manifest"].pop("fingerprint")),
    ("checkpoint.sha256", lambda r: r["checkpoint"].update(sha256="b" * 64)),
    ("metrics.auroc_macro.value", lambda r: r["metrics"]["auroc_macro"].update(value=83.0)),
    ("metrics.auroc_macro.ci_low", lambda r: r["metrics"]["auroc_macro"].update(ci_low=0.9)),
    ("key", lambda r: r.update(key="0" * 64)),
    ("config_hash", lambda r: r["config"].update(lr=1)),
    ("primary_metric", lambda r: r.update(primary_metric="dice")),
    ("status", lambda r: r.update(status="done")),
    ("finished_at", lambda r: r.update(finished_at="yesterday")),
    ("fraction", lambda r: r.update(fraction=0.1)),
    ("method.label", lambda r: r["method"].pop("label")),
])
def test_validation_names_the_field(make_measured, field, mutate):
    record = copy.deepcopy(make_measured())
    mutate(record)
    with pytest.raises(RecordError, match=f"'{field}"):
        validate_record(record)


def test_make_record_names_missing_inputs(make_measured):
    args = _args(make_measured())
    with pytest.raises(RecordError, match="checkpoint.sha256"):
        make_record(**{**args, "checkpoint": {"path": "x"}})
    with pytest.raises(RecordError, match="identity.task"):
        make_record(**{**args, "task": "../escape"})
    with pytest.raises(RecordError, match="metrics.auroc_macro"):
        make_record(**{**args, "metrics": {"auroc_macro": float("nan")}})


def test_failed_record_needs_an_error(make_measured):
    record = make_measured(status="failed")
    assert record["status"] == "failed" and record["metrics"] == {}
    record["error"] = None
    with pytest.raises(RecordError, match="'error'"):
        validate_record(record)


def test_unbounded_metrics_may_exceed_one_but_not_go_negative(make_measured):
    import pytest

    from place_bench.results.records import RecordError, validate_record

    record = make_measured(metric="cider", value=0.5)
    record["metrics"]["cider"].update(value=1.7, ci_low=1.2, ci_high=2.1, unbounded=True)
    validate_record(record)
    record["metrics"]["cider"]["unbounded"] = False
    with pytest.raises(RecordError, match="metrics.cider.value"):
        validate_record(record)
    record["metrics"]["cider"].update(unbounded=True, value=-0.1)
    with pytest.raises(RecordError, match="non-negative"):
        validate_record(record)
