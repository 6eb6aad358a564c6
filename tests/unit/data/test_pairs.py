"""Image-report pairs: the shuffled pairing of the alignment control."""

import pytest

from place_bench.data.pairs import ImageReportDataset


@pytest.fixture(scope="module")
def twelve_pairs(tmp_path_factory):
    from place_bench.plugins.datasets.synthetic.pairs_manifest import write_pairs_manifest

    return write_pairs_manifest(tmp_path_factory.mktemp("twelve"), n_train=12, n_test=0, image_px=72)


def test_shuffled_pairing_permutes_reports_once_and_keeps_images(twelve_pairs):
    aligned = ImageReportDataset(twelve_pairs, pipeline=dict(resize_to=72, crop=64))
    shuffled = ImageReportDataset(twelve_pairs, pipeline=dict(resize_to=72, crop=64), pairing="shuffled")
    again = ImageReportDataset(twelve_pairs, pipeline=dict(resize_to=72, crop=64), pairing="shuffled")
    other = ImageReportDataset(twelve_pairs, pipeline=dict(resize_to=72, crop=64), pairing="shuffled",
                               pairing_seed=1)
    a = [aligned[i] for i in range(len(aligned))]
    s = [shuffled[i] for i in range(len(shuffled))]
    # images and ids stay in place; the same multiset of reports, mostly moved
    assert [x["sample_id"] for x in a] == [x["sample_id"] for x in s]
    assert all(bool((x["image"] == y["image"]).all()) for x, y in zip(a, s))
    assert sorted(x["report"] for x in a) == sorted(x["report"] for x in s)
    assert sum(x["report"] != y["report"] for x, y in zip(a, s)) >= 8
    # fixed once by the seed: the same permutation on every read, another one for another seed
    assert [again[i]["report"] for i in range(12)] == [x["report"] for x in s]
    assert [other[i]["report"] for i in range(12)] != [x["report"] for x in s]


def test_unknown_pairing_is_named(twelve_pairs):
    with pytest.raises(ValueError, match="pairing 'mixed'"):
        ImageReportDataset(twelve_pairs, pairing="mixed")
