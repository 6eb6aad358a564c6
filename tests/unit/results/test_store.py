"""Results store: atomic writes, concurrent writers, unreadable files reported with their path."""

from __future__ import annotations

import json
import multiprocessing
import os

import pytest

from place_bench.results import store as store_mod
from place_bench.results.store import ResultsStore, default_results_dir


def _all_files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and ".locks" not in p.parts)


def test_write_get_has_iter_delete(tmp_path, make_measured):
    store = ResultsStore(tmp_path)
    a = make_measured(seed=0)
    b = make_measured(seed=1, dataset="rsna", metric="auroc")
    path = store.write(a)
    store.write(b)
    assert path == tmp_path / "cls_linear" / "chexpert" / f"{a['key']}.json"
    assert store.has(a["key"]) and store.get(a["key"]) == a
    assert [r["key"] for r in store.iter_records(dataset="rsna")] == [b["key"]]
    assert len(list(store.iter_records(task="cls_linear"))) == 2
    assert store.delete(a["key"]) and not store.has(a["key"]) and not store.delete(a["key"])
    with pytest.raises(KeyError):
        store.get(a["key"])
    with pytest.raises(ValueError):
        store.has("../../etc/passwd")


def test_invalid_record_is_refused_before_writing(tmp_path, make_measured):
    record = make_measured()
    record["metrics"]["auroc_macro"]["value"] = 83.0
    with pytest.raises(ValueError, match="metrics.auroc_macro.value"):
        ResultsStore(tmp_path).write(record)
    assert _all_files(tmp_path) == []


@pytest.mark.parametrize("broken", ["replace", "fsync"])
def test_interrupted_write_leaves_no_partial_record_and_no_litter(tmp_path, make_measured, monkeypatch, broken):
    store = ResultsStore(tmp_path)
    old = make_measured(value=0.5)
    store.write(old)
    new = make_measured(value=0.9)  # same key
    assert new["key"] == old["key"]

    def fail(*args, **kwargs):
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(os, broken, fail)
    with pytest.raises(KeyboardInterrupt):
        store.write(new)
    with pytest.raises(KeyboardInterrupt):
        store.write(make_measured(seed=7))
    monkeypatch.undo()
    assert _all_files(tmp_path) == [f"cls_linear/chexpert/{old['key']}.json"]
    records, problems = store.read_all()
    assert problems == [] and [r["metrics"]["auroc_macro"]["value"] for r in records] == [0.5]


def test_temp_file_of_a_killed_writer_is_invisible(tmp_path, make_measured):
    store = ResultsStore(tmp_path)
    record = make_measured()
    folder = tmp_path / "cls_linear" / "chexpert"
    folder.mkdir(parents=True)
    (folder / f".{record['key']}.json.x1y2.tmp").write_text('{"schema": 1, "ki')
    records, problems = store.read_all()
    assert records == [] and problems == []


def _worker(root, worker, measured):
    # Seeds 0-9 are written by every worker (same keys, different values); 10-19 are this worker's own.
    store = ResultsStore(root)
    for i in range(20):
        if i < 10:
            record = measured(seed=i, value=round(0.1 + 0.2 * worker, 2), extra={"pad": "x" * 20000})
        else:
            record = measured(sha=f"{worker:x}" * 64, seed=i, value=0.5)
        store.write(record)


def test_concurrent_writers_leave_only_complete_records(tmp_path, make_measured):
    ctx = multiprocessing.get_context("fork")  # fork: the factory needs no pickling or re-import
    procs = [ctx.Process(target=_worker, args=(tmp_path, w, make_measured)) for w in range(4)]
    for p in procs:
        p.start()
    seen_problems = []
    while any(p.is_alive() for p in procs):  # a reader during the writes never sees a torn record
        seen_problems += ResultsStore(tmp_path).read_all()[1]
    for p in procs:
        p.join(120)
    assert seen_problems == []
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    files = [p for p in tmp_path.rglob("*") if p.is_file() and ".locks" not in p.parts]
    assert len(files) == 10 + 4 * 10
    assert all(f.suffix == ".json" and not f.name.startswith(".") for f in files)
    for f in files:
        json.loads(f.read_text())
    records, problems = ResultsStore(tmp_path).read_all()
    assert problems == [] and len(records) == 50
    shared = [r for r in records if r["identity"]["checkpoint_sha256"] == "a" * 64]
    assert len(shared) == 10
    assert {r["metrics"]["auroc_macro"]["value"] for r in shared} <= {0.1, 0.3, 0.5, 0.7}


def test_unreadable_files_are_reported_with_their_path(tmp_path, make_measured):
    store = ResultsStore(tmp_path)
    good = make_measured()
    store.write(good)
    folder = tmp_path / "cls_linear" / "chexpert"
    torn = folder / ("1" * 64 + ".json")
    torn.write_text('{"schema": 1, "kind": "meas')
    invalid = folder / ("2" * 64 + ".json")
    invalid.write_text(json.dumps({"schema": 1, "kind": "measured"}))
    renamed = folder / ("3" * 64 + ".json")
    renamed.write_text(json.dumps(good))
    records, problems = store.read_all()
    assert [r["key"] for r in records] == [good["key"]]
    assert {p.path for p in problems} == {torn, invalid, renamed}
    reasons = {p.path: p.reason for p in problems}
    assert "unreadable" in reasons[torn] and "'key'" in reasons[invalid] and "file name" in reasons[renamed]
    with pytest.warns(UserWarning) as caught:
        list(store.iter_records())
    assert sorted(str(w.message).split(": ")[0] for w in caught) == sorted(f"skipped record file {p}"
                                                                        for p in (torn, invalid, renamed))


def test_default_results_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("PLACE_BENCH_RESULTS", str(tmp_path / "mine"))
    assert default_results_dir() == tmp_path / "mine"
    assert ResultsStore().root == tmp_path / "mine"
    monkeypatch.delenv("PLACE_BENCH_RESULTS")
    repo = store_mod.Path(store_mod.__file__).resolve().parents[2]
    assert default_results_dir() == repo / "registry" / "results"


def test_set_aside_moves_one_checkpoints_records_and_their_files(tmp_path, make_measured):
    store = ResultsStore(tmp_path)
    old = [make_measured(sha="a" * 64, seed=s) for s in (0, 1)]
    other = make_measured(sha="b" * 64)
    for record in (*old, other):
        store.write(record)
    beside = store.path_for(old[0]).with_name(f"{old[0]['key']}.predictions.npz")
    beside.write_bytes(b"npz")
    moved = store.set_aside("a" * 64, "convirt.stale-20261206T000000Z")
    folder = tmp_path / ".superseded" / "convirt.stale-20261206T000000Z" / "cls_linear" / "chexpert"
    assert sorted(moved) == sorted(folder / f"{r['key']}.json" for r in old)
    assert (folder / beside.name).read_bytes() == b"npz" and not beside.exists()
    assert json.loads((folder / f"{old[1]['key']}.json").read_text()) == old[1]
    assert [r["key"] for r in store.iter_records()] == [other["key"]]  # readers skip the dot-folder
    assert store.set_aside("a" * 64, "again") == []
