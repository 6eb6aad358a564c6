"""Canonical column-major RLE and SIIM-ACR relative RLE, with hand-written encodings."""

import numpy as np
import pytest

from place_bench.data.rle import (
    RLEError,
    counts_to_mask,
    mask_to_counts,
    mask_to_rle,
    mask_to_siim_rle,
    plausible_siim_modes,
    rle_to_coco,
    rle_to_mask,
    siim_rle_to_mask,
    siim_to_canonical,
)

# A 4x3 mask (height 4, width 3). Column-major walk: column 0 = 0 1 1 0, column 1 = 1 1 0 0,
# column 2 = 0 0 0 1 -> runs bg 1, fg 2, bg 1, fg 2, bg 5, fg 1 (the last pixel is foreground).
MASK_4x3 = np.array(
    [
        [0, 1, 0],
        [1, 1, 0],
        [1, 0, 0],
        [0, 0, 1],
    ],
    dtype=bool,
)


def test_hand_encoded_4x3_mask():
    assert mask_to_counts(MASK_4x3) == [1, 2, 1, 2, 5, 1]
    assert mask_to_rle(MASK_4x3) == "4 3 1 2 1 2 5 1"
    np.testing.assert_array_equal(rle_to_mask("4 3 1 2 1 2 5 1"), MASK_4x3)
    assert rle_to_coco("4 3 1 2 1 2 5 1") == {"size": [4, 3], "counts": [1, 2, 1, 2, 5, 1]}


def test_hand_encoded_4x3_mask_siim_modes():
    assert mask_to_siim_rle(MASK_4x3) == "1 2 1 2 5 1"
    np.testing.assert_array_equal(siim_rle_to_mask(" 1 2 1 2 5 1", (4, 3)), MASK_4x3)
    # absolute starts of the three runs: 1, 4, 11 (0-based)
    np.testing.assert_array_equal(siim_rle_to_mask("1 2 4 2 11 1", (4, 3), mode="absolute0"), MASK_4x3)
    np.testing.assert_array_equal(siim_rle_to_mask("2 2 5 2 12 1", (4, 3), mode="absolute1"), MASK_4x3)


def test_edge_masks():
    empty = np.zeros((2, 3), dtype=bool)
    full = np.ones((2, 3), dtype=bool)
    assert mask_to_rle(empty) == "2 3 6"
    assert mask_to_rle(full) == "2 3 0 6"
    assert mask_to_siim_rle(empty) == "-1"
    assert mask_to_siim_rle(full) == "0 6"
    first_only = np.zeros((2, 3), dtype=bool)
    first_only[0, 0] = True
    assert mask_to_rle(first_only) == "2 3 0 1 5"
    np.testing.assert_array_equal(rle_to_mask("2 3 0 1 5"), first_only)


def test_spec_worked_example_8x8():
    # datasets.md 1.4 item 5: rows 2-4 of column 1, rows 0-1 and 7 of column 6, row 3 of column 7
    m = np.zeros((8, 8), dtype=bool)
    m[2:5, 1] = True
    m[0:2, 6] = True
    m[7, 6] = True
    m[3, 7] = True
    np.testing.assert_array_equal(siim_rle_to_mask("10 3 35 2 5 1 3 1", (8, 8)), m)
    assert mask_to_siim_rle(m) == "10 3 35 2 5 1 3 1"
    assert siim_to_canonical(" 10 3 35 2 5 1 3 1", (8, 8)) == "8 8 10 3 35 2 5 1 3 1 4"


def test_siim_orientation_is_transposed_column_major():
    # a single run of 3 pixels starting at index 5 on a 4x4 image: column 1, rows 1..3
    m = siim_rle_to_mask("5 3", (4, 4))
    assert list(zip(*np.nonzero(m))) == [(1, 1), (2, 1), (3, 1)]
    # non-square: height 2, width 3; index k -> (k % 2, k // 2)
    m = siim_rle_to_mask("3 1", (2, 3))
    assert list(zip(*np.nonzero(m))) == [(1, 1)]


def test_siim_rows_are_unioned_and_minus_one_is_empty():
    a = siim_rle_to_mask(["0 2", " -1", "1 2"], (2, 2))  # pixels {0,1} | {} | {1,2}
    np.testing.assert_array_equal(a, [[True, True], [True, False]])
    assert not siim_rle_to_mask(" -1", (4, 4)).any()
    assert not siim_rle_to_mask(["-1", "-1"], (4, 4)).any()


@pytest.mark.parametrize(
    "value, problem",
    [
        ("", "empty RLE value"),
        ("   ", "empty RLE value"),
        (None, "missing RLE value"),
        (float("nan"), "missing RLE value"),
        ("1 2 3", "odd number of values (3)"),
        ("1 x", "non-integer token 'x'"),
        ("1.5 2", "non-integer token '1.5'"),
        ("5 -2", "negative number"),
        ("-1 4", "negative number"),
        ("3 0", "run #1 has length 0"),
        ("10 3 4 4", "run #2 ends at pixel 21, beyond the 16-pixel image"),
    ],
)
def test_siim_malformed_values_name_the_row(value, problem):
    with pytest.raises(RLEError) as info:
        siim_rle_to_mask(value, (4, 4), where="train-rle.csv row 7 (ImageId 1.2.3)")
    msg = str(info.value)
    assert msg.startswith("train-rle.csv row 7 (ImageId 1.2.3): ")
    assert problem in msg
    assert isinstance(info.value, ValueError)


def test_siim_multi_row_error_names_the_value():
    with pytest.raises(RLEError, match=r"^img 9, value 2 of 2: odd number"):
        siim_rle_to_mask(["1 2", "1 2 3"], (4, 4), where="img 9")
    with pytest.raises(RLEError, match="no RLE values"):
        siim_rle_to_mask([], (4, 4))


def test_absolute_mode_checks_and_mode_detection():
    with pytest.raises(RLEError, match="overlap"):
        siim_rle_to_mask("5 3 6 1", (4, 4), mode="absolute0")
    with pytest.raises(RLEError, match="1-based start 0"):
        siim_rle_to_mask("0 3", (4, 4), mode="absolute1")
    # "2 2 12 2" relative: runs at 2 and 16 -> overflows a 16-pixel image; absolute fits
    assert plausible_siim_modes("2 2 12 2", (4, 4)) == ("absolute0", "absolute1")
    assert plausible_siim_modes("-1", (4, 4)) == ("relative", "absolute0", "absolute1")
    # relative: runs [10, 13) and [14, 15); as absolute the second start (1 or 0) goes backwards
    assert plausible_siim_modes("10 3 1 1", (4, 4)) == ("relative",)


@pytest.mark.parametrize(
    "rle, problem",
    [
        ("4 3 1 2", "sum to 3, expected height*width = 12"),
        ("4 3 1 -2 11", "negative run length"),
        ("4 3", "needs '<height> <width> <counts...>'"),
        ("4 3 a", "non-integer token"),
    ],
)
def test_canonical_malformed(rle, problem):
    with pytest.raises(RLEError, match="^manifest row 3: ") as info:
        rle_to_mask(rle, where="manifest row 3")
    assert problem in str(info.value)


def test_random_round_trips():
    rng = np.random.default_rng(0)
    for h, w in [(1, 1), (1, 7), (5, 1), (6, 9), (32, 17)]:
        for p in (0.0, 0.1, 0.5, 1.0):
            m = rng.random((h, w)) < p
            assert mask_to_counts(m)[0] >= 0
            assert sum(mask_to_counts(m)) == h * w
            np.testing.assert_array_equal(rle_to_mask(mask_to_rle(m)), m)
            np.testing.assert_array_equal(siim_rle_to_mask(mask_to_siim_rle(m), (h, w)), m)
            np.testing.assert_array_equal(counts_to_mask(mask_to_counts(m), (h, w)), m)


# pycocotools' decode trips numpy 2's copy-keyword deprecation; not our concern here
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_matches_pycocotools():
    mask_utils = pytest.importorskip("pycocotools.mask")
    rng = np.random.default_rng(1)
    masks = [MASK_4x3, np.zeros((3, 5), bool), np.ones((3, 5), bool)]
    masks += [rng.random((h, w)) < p for h, w, p in [(7, 5, 0.3), (16, 16, 0.6), (9, 31, 0.05)]]
    for m in masks:
        h, w = m.shape
        ref = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        ours = mask_utils.frPyObjects(rle_to_coco(mask_to_rle(m)), h, w)
        assert ours["counts"] == ref["counts"]
        np.testing.assert_array_equal(mask_utils.decode(ours).astype(bool), m)
        np.testing.assert_array_equal(rle_to_mask(mask_to_rle(mask_utils.decode(ref))), m)
