"""Image reader (PNG / JPEG / DICOM) and the shared letterbox pipeline, with hand-computed values."""

import io

import numpy as np
import pytest
from PIL import Image

from place_bench.data.images import (
    CXRTransform,
    Geometry,
    ImageReadError,
    center_crop,
    letterbox,
    probe_image,
    random_crop,
    read_image,
    resize,
    resize_shorter_side,
    to_tensor,
)

pydicom = pytest.importorskip("pydicom")
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.uid import ExplicitVRLittleEndian, generate_uid  # noqa: E402


def write_dicom(path, stored, photometric="MONOCHROME2", bits_stored=None, preamble=True, **attrs):
    """Write an uncompressed single-frame grayscale DICOM holding ``stored`` verbatim."""
    stored = np.asarray(stored)
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"  # digital X-ray
    meta.MediaStorageSOPInstanceUID = generate_uid()
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = stored.dtype.itemsize * 8
    ds.BitsStored = bits_stored or ds.BitsAllocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    for key, value in attrs.items():
        setattr(ds, key, value)
    ds.PixelData = stored.tobytes()
    ds.save_as(path, enforce_file_format=preamble)
    return path


# ---------------------------------------------------------------------------- DICOM

STORED_12BIT = np.array([[0, 1000, 3000], [1500, 2000, 500]], dtype=np.uint16)


def test_dicom_monochrome1_12bit_max_scaling(tmp_path):
    p = write_dicom(tmp_path / "a.dcm", STORED_12BIT, "MONOCHROME1", bits_stored=12)
    img = read_image(p)
    # max-scaling: x / 3000, then MONOCHROME1 inverted: 1 - x / 3000
    expected = np.array([[1.0, 2 / 3, 0.0], [0.5, 1 / 3, 5 / 6]], dtype=np.float32)
    assert img.dtype == np.float32 and img.shape == (2, 3)
    np.testing.assert_allclose(img, expected, atol=1e-6)


def test_dicom_monochrome1_12bit_bits_scaling_uses_4095_not_65535(tmp_path):
    p = write_dicom(tmp_path / "a.dcm", STORED_12BIT, "MONOCHROME1", bits_stored=12)
    img = read_image(p, dicom_scaling="bits")
    expected = 1.0 - STORED_12BIT / 4095.0
    np.testing.assert_allclose(img, expected, atol=1e-6)
    assert img[1, 2] == pytest.approx(1 - 500 / 4095, abs=1e-6)  # not 1 - 500/65535


def test_dicom_monochrome2_8bit_and_quantize(tmp_path):
    stored = np.array([[0, 51], [102, 204]], dtype=np.uint8)
    p = write_dicom(tmp_path / "b.dcm", stored)
    np.testing.assert_allclose(read_image(p), [[0, 0.25], [0.5, 1.0]], atol=1e-6)
    q = read_image(p, quantize=True)  # 51/204*255 = 63.75 -> 64
    np.testing.assert_allclose(q, [[0, 64 / 255], [128 / 255, 1.0]], atol=1e-6)


def test_dicom_rescale_slope_intercept(tmp_path):
    stored = np.array([[500, 1000], [0, 2000]], dtype=np.uint16)
    p = write_dicom(tmp_path / "c.dcm", stored, bits_stored=12, RescaleSlope="2", RescaleIntercept="-1000")
    # modality values 2x - 1000: [[0, 1000], [-1000, 3000]]; nominal range [-1000, 7190]
    np.testing.assert_allclose(read_image(p), [[0.25, 0.5], [0.0, 1.0]], atol=1e-6)
    np.testing.assert_allclose(
        read_image(p, dicom_scaling="bits"), [[1000 / 8190, 2000 / 8190], [0.0, 4000 / 8190]], atol=1e-6
    )


def test_dicom_window_center_width(tmp_path):
    stored = np.array([[0, 50, 100], [149, 150, 255]], dtype=np.uint8)
    p = write_dicom(tmp_path / "d.dcm", stored, WindowCenter="100", WindowWidth="101")
    # LINEAR window: ((x - 99.5) / 100 + 0.5) clipped to [0, 1]
    expected = [[0.0, 0.005, 0.505], [0.995, 1.0, 1.0]]
    np.testing.assert_allclose(read_image(p, dicom_scaling="bits"), expected, atol=1e-6)
    np.testing.assert_allclose(read_image(p), expected, atol=1e-6)
    np.testing.assert_allclose(read_image(p, apply_voi=False), stored / 255.0, atol=1e-6)


def test_dicom_without_preamble_needs_dcm_extension(tmp_path):
    p = write_dicom(tmp_path / "e.dcm", STORED_12BIT, bits_stored=12, preamble=False)
    assert p.read_bytes()[128:132] != b"DICM"
    np.testing.assert_allclose(read_image(p), STORED_12BIT / 3000.0, atol=1e-6)


def test_dicom_rgb_is_rejected(tmp_path):
    p = tmp_path / "rgb.dcm"
    write_dicom(p, np.zeros((2, 6), dtype=np.uint8), "RGB", SamplesPerPixel=3, PlanarConfiguration=0)
    with pytest.raises(ImageReadError, match="non-grayscale"):
        read_image(p)


def test_truncated_dicom(tmp_path):
    p = write_dicom(tmp_path / "t.dcm", STORED_12BIT, bits_stored=12)
    p.write_bytes(p.read_bytes()[:-4])
    with pytest.raises(ImageReadError) as info:
        read_image(p)
    assert str(p) in str(info.value) and "pixel data" in str(info.value)


def test_garbage_dcm_file(tmp_path):
    p = tmp_path / "junk.dcm"
    p.write_bytes(b"this is not a dicom file at all")
    with pytest.raises(ImageReadError, match="junk.dcm"):
        read_image(p)


# ---------------------------------------------------------------------------- PNG / JPEG


def test_png_8bit_and_16bit(tmp_path):
    a8 = np.array([[0, 255], [51, 102]], dtype=np.uint8)
    Image.fromarray(a8).save(tmp_path / "a.png")
    np.testing.assert_allclose(read_image(tmp_path / "a.png"), a8 / 255.0, atol=1e-7)

    a16 = np.array([[0, 65535], [4095, 32768]], dtype=np.uint16)
    Image.fromarray(a16).save(tmp_path / "b.png")
    np.testing.assert_allclose(read_image(tmp_path / "b.png"), a16 / 65535.0, atol=1e-7)
    assert probe_image(tmp_path / "b.png").height == 2


def test_gray_stored_as_rgb_is_exact_and_colour_is_luma_or_error(tmp_path):
    gray = np.array([[10, 200], [30, 40]], dtype=np.uint8)
    Image.fromarray(np.stack([gray] * 3, -1)).save(tmp_path / "g.png")
    np.testing.assert_allclose(read_image(tmp_path / "g.png", allow_color=False), gray / 255.0, atol=1e-7)

    rgb = np.zeros((1, 2, 3), dtype=np.uint8)
    rgb[0, 0] = (255, 0, 0)
    rgb[0, 1] = (0, 0, 255)
    Image.fromarray(rgb).save(tmp_path / "c.png")
    np.testing.assert_allclose(read_image(tmp_path / "c.png"), [[0.299, 0.114]], atol=1e-6)
    with pytest.raises(ImageReadError, match="colour"):
        read_image(tmp_path / "c.png", allow_color=False)


def test_jpeg_and_probe(tmp_path):
    a = np.full((16, 24), 128, dtype=np.uint8)
    Image.fromarray(a).save(tmp_path / "x.jpg", quality=95)
    img = read_image(tmp_path / "x.jpg")
    assert img.shape == (16, 24) and img.dtype == np.float32
    np.testing.assert_allclose(img, 128 / 255.0, atol=2 / 255)
    info = probe_image(tmp_path / "x.jpg")
    assert (info.height, info.width, info.format, info.photometric) == (16, 24, "jpg", None)


def test_truncated_jpeg_raises(tmp_path):
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (64, 64), dtype=np.uint8)).save(buf, format="JPEG")
    p = tmp_path / "trunc.jpg"
    p.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageReadError) as info:
        read_image(p)
    assert "trunc.jpg" in str(info.value) and "truncated" in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "name, content, cause",
    [
        ("missing.png", None, "file not found"),
        ("empty.png", b"", "file is empty"),
        ("text.png", b"hello world", "not a PNG, JPEG or DICOM"),
    ],
)
def test_read_failures_name_file_and_cause(tmp_path, name, content, cause):
    p = tmp_path / name
    if content is not None:
        p.write_bytes(content)
    with pytest.raises(ImageReadError) as info:
        read_image(p)
    assert name in str(info.value) and cause in str(info.value)
    assert info.value.path == str(p)


# ---------------------------------------------------------------------------- resize / pipeline


def test_area_resize_by_hand():
    img = np.array([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]])
    np.testing.assert_allclose(resize(img, (1, 2)), [[3.5, 5.5]])
    # 3 -> 2: cells cover [0, 1.5) and [1.5, 3)
    row = np.array([[3.0, 6.0, 9.0]])
    np.testing.assert_allclose(resize(row, (1, 2)), [[(3 + 0.5 * 6) / 1.5, (0.5 * 6 + 9) / 1.5]])


def test_area_resize_matches_opencv_inter_area_when_shrinking():
    cv2 = pytest.importorskip("cv2")
    img = np.random.default_rng(1).random((300, 200)).astype(np.float32)
    ours = resize(img, (256, 170))
    ref = cv2.resize(img, (170, 256), interpolation=cv2.INTER_AREA)
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_letterbox_pads_floor_ceil_and_geometry():
    img = np.ones((8, 3), dtype=np.float32)
    out, g = letterbox(img, 4)
    # long side 8 -> 4 (scale 0.5), short side int(3 * 0.5) = 1, padding 3 = 1 left + 2 right
    expected = np.zeros((4, 4), dtype=np.float32)
    expected[:, 1] = 1.0
    np.testing.assert_array_equal(out, expected)
    assert (g.sx, g.sy, g.tx, g.ty) == (1 / 3, 0.5, 1.0, 0.0)

    _, g = letterbox(np.zeros((512, 256)), 256)
    np.testing.assert_allclose(g.map_boxes([[0, 0, 256, 512], [10, 20, 30, 40]]),
                               [[64, 0, 192, 256], [69, 10, 79, 20]])


def test_center_and_random_crop():
    img = np.arange(36, dtype=np.float32).reshape(6, 6)
    out, g = center_crop(img, 4)
    np.testing.assert_array_equal(out, img[1:5, 1:5])
    assert (g.tx, g.ty) == (-1.0, -1.0)
    a, ga = random_crop(img, 4, np.random.default_rng(3))
    b, gb = random_crop(img, 4, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    top, left = int(-ga.ty), int(-ga.tx)
    np.testing.assert_array_equal(a, img[top : top + 4, left : left + 4])
    with pytest.raises(ValueError):
        center_crop(img, 7)


def test_resize_shorter_side_bilinear_keeps_constants():
    out, g = resize_shorter_side(np.full((300, 200), 0.25, dtype=np.float32), 100)
    assert out.shape == (150, 100)
    np.testing.assert_allclose(out, 0.25, atol=1e-6)
    assert (g.sx, g.sy) == (0.5, 0.5)


def test_cxr_transform_eval_values_shape_and_geometry():
    img = np.ones((512, 256), dtype=np.float32)  # tall image: padded left and right
    t, g = CXRTransform(train=False).apply(img)
    assert tuple(t.shape) == (3, 224, 224) and str(t.dtype) == "torch.float32"
    # letterbox: content in columns 64..191; centre crop removes 16 -> content in 48..175
    assert float(t[0, 100, 47]) == -1.0 and float(t[0, 100, 48]) == 1.0
    assert float(t[2, 100, 175]) == 1.0 and float(t[2, 100, 176]) == -1.0
    assert g == Geometry(0.5, 0.5, 48.0, -16.0, 224, 224)


def test_pipeline_never_flips_left_right():
    img = np.zeros((300, 300), dtype=np.float32)
    img[:, :100] = 1.0  # bright image-left (patient right)
    for transform in (CXRTransform(train=False), CXRTransform(train=True)):
        for seed in range(3):
            t = transform(img, np.random.default_rng(seed))
            assert float(t[0, :, :20].mean()) > 0.9 and float(t[0, :, -20:].mean()) < -0.9


def test_hflip_mirrors_training_images_with_its_probability_and_maps_geometry():
    img = np.zeros((300, 300), dtype=np.float32)
    img[:, :100] = 1.0
    transform = CXRTransform(resize_to=256, crop=224, train=True, hflip=0.5)
    flipped = 0
    for seed in range(40):
        t, g = transform.apply(img, np.random.default_rng(seed))
        left_bright = float(t[0, :, :20].mean()) > 0.9
        assert left_bright == (g.sx > 0)          # the geometry says whether it flipped
        flipped += not left_bright
        # the image's left edge (x = 0) lands on the output's right side after a flip
        x0 = float(g.map_points([[0.0, 150.0]])[0, 0])
        assert (x0 >= 223.0) if g.sx < 0 else (x0 <= 1.0)
    assert 10 <= flipped <= 30
    # evaluation never flips, whatever hflip says
    for seed in range(5):
        t = CXRTransform(train=False, hflip=1.0)(img, np.random.default_rng(seed))
        assert float(t[0, :, :20].mean()) > 0.9
    with pytest.raises(ValueError, match="hflip"):
        CXRTransform(hflip=1.5)


def test_hflip_zero_draws_the_same_crops_as_before():
    img = np.random.default_rng(0).random((100, 100)).astype(np.float32)
    a = CXRTransform(resize_to=80, crop=64, train=True)(img, np.random.default_rng(5))
    b = CXRTransform(resize_to=80, crop=64, train=True, hflip=0.0)(img, np.random.default_rng(5))
    assert bool((a == b).all())


def test_to_tensor_replicates_channels():
    t = to_tensor(np.array([[0.0, 1.0]], dtype=np.float32))
    assert tuple(t.shape) == (3, 1, 2)
    assert t[:, 0, 1].tolist() == [1.0, 1.0, 1.0]


def test_truncated_jpeg_raises_even_with_pillow_global_switch(tmp_path, monkeypatch):
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    buf = io.BytesIO()
    Image.fromarray(np.full((32, 32), 7, dtype=np.uint8)).save(buf, format="JPEG")
    p = tmp_path / "cut.jpg"
    p.write_bytes(buf.getvalue()[:-40])
    with pytest.raises(ImageReadError, match="truncated"):
        read_image(p)
    p.write_bytes(buf.getvalue())
    assert read_image(p).shape == (32, 32)


def test_area_resize_when_enlarging_by_hand():
    np.testing.assert_allclose(resize(np.array([[1.0, 2.0]]), (1, 4)), [[1, 1, 2, 2]])
    # 2 -> 3: cells [0, 2/3), [2/3, 4/3), [4/3, 2)
    np.testing.assert_allclose(resize(np.array([[1.0, 2.0]]), (1, 3)), [[1, 1.5, 2]], atol=1e-6)


def test_random_crop_with_torch_generator_is_seeded_by_torch():
    import torch

    img = np.arange(100, dtype=np.float32).reshape(10, 10)
    torch.manual_seed(5)
    a, _ = random_crop(img, 4)
    torch.manual_seed(5)
    b, _ = random_crop(img, 4)
    np.testing.assert_array_equal(a, b)
