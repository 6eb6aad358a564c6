"""Shared chest X-ray image reader and the GLoRIA / MGCA image pipeline (datasets.md section 2.0).

Reading
    :func:`read_image` decodes PNG, JPEG (8 or 16 bit) and DICOM (pydicom 3) into a ``float32``
    array of shape ``(H, W)`` with values in ``[0, 1]``, 0 = black (air), 1 = white (bone), in
    the stored orientation (row 0 = top, column 0 = image left = patient right on frontal views).
    Every failure raises :class:`ImageReadError` naming the file and the cause.
    :func:`probe_image` reads only headers (size, format, photometric interpretation).

Pipeline (pure functions on ``numpy`` arrays, plus one callable class producing ``torch`` tensors)
    1. :func:`letterbox` -- resize so the longer side equals ``size`` (256) with exact area
       averaging, keep the aspect ratio, zero-pad the short side (floor before / ceil after);
    2. :func:`center_crop` (eval) or :func:`random_crop` (train) to 224;
    3. :func:`to_tensor` -- replicate to 3 channels, ``torch.float32`` ``(3, H, W)``;
    4. :func:`normalize` -- mean 0.5 / std 0.5 (MGCA/GLoRIA), or ImageNet, or any dataset values.

    :class:`CXRTransform` chains them. Every geometric step also returns a :class:`Geometry`
    that maps native pixel coordinates to output coordinates, for boxes and points.
    :func:`resize_shorter_side` and :func:`resize` cover the R2Gen / detection variants.

**No horizontal (or any) flip is offered, by design**: flipping breaks the correspondence between
laterality words in reports and image content (datasets.md section 5, item 17).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Sequence

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "CXRTransform",
    "Geometry",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ImageInfo",
    "ImageReadError",
    "MGCA_MEAN",
    "MGCA_STD",
    "center_crop",
    "letterbox",
    "normalize",
    "probe_image",
    "random_crop",
    "read_image",
    "resize",
    "resize_shorter_side",
    "to_tensor",
]

MGCA_MEAN = (0.5, 0.5, 0.5)
MGCA_STD = (0.5, 0.5, 0.5)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

PathLike = str | os.PathLike


class ImageReadError(ValueError):
    """An image could not be read. ``path`` and ``cause`` are kept as attributes."""

    def __init__(self, path: PathLike, cause: str):
        self.path = os.fspath(path)
        self.cause = cause
        super().__init__(f"cannot read image {self.path!r}: {cause}")


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
_DICOM_EXTENSIONS = (".dcm", ".dicom")


def _sniff(data: bytes, path: PathLike) -> str:
    if data.startswith(_PNG_MAGIC):
        return "png"
    if data.startswith(_JPEG_MAGIC):
        return "jpg"
    if data[128:132] == b"DICM":
        return "dcm"
    if os.fspath(path).lower().endswith(_DICOM_EXTENSIONS):
        return "dcm"  # DICOM without the 128-byte preamble: parsed with force=True
    raise ImageReadError(path, "not a PNG, JPEG or DICOM file (unrecognized header bytes)")


def read_image(
    path: PathLike,
    *,
    dicom_scaling: Literal["max", "bits"] = "max",
    apply_voi: bool = True,
    allow_color: bool = True,
    quantize: bool = False,
) -> np.ndarray:
    """Decode one image file to a ``float32`` ``(H, W)`` array in ``[0, 1]`` (1 = bright = bone).

    The format is recognized from the file content (PNG / JPEG signatures, the ``DICM`` marker);
    a file without the DICOM preamble is accepted when its name ends in ``.dcm`` / ``.dicom``.

    PNG / JPEG (Pillow): 8-bit grayscale is divided by 255, 16-bit grayscale by 65535 (PNG
    requires reduced-precision samples to be scaled up to the full bit depth, so the container
    range is the right one; OpenCV's 8-bit read in the reference codes does the same), bilevel
    images give 0 / 1; an alpha channel is dropped. RGB(A) or palette images whose channels are
    all equal are read exactly; truly coloured ones are converted to luma
    (0.299 R + 0.587 G + 0.114 B, what OpenCV's grayscale read in the reference codes does) when
    ``allow_color`` is true, otherwise :class:`ImageReadError`. Other modes (CMYK, float, ...)
    are errors.

    DICOM (pydicom ``dcmread``), in this order:

    1. stored values (pydicom honours ``BitsStored`` and ``PixelRepresentation``); only
       single-frame, one-sample ``MONOCHROME1`` / ``MONOCHROME2`` images are accepted;
    2. the Modality LUT: ``RescaleSlope`` / ``RescaleIntercept`` or a Modality LUT Sequence;
    3. if ``apply_voi`` and the file has a VOI LUT Sequence or ``WindowCenter`` /
       ``WindowWidth``: that VOI transform (the LUT is preferred when both exist; BenchX does
       this, GLoRIA / MGCA do not -- pass ``apply_voi=False`` to reproduce them exactly);
    4. scaling to ``[0, 1]`` against the nominal value range ``[lo, hi]`` of the previous step
       (``[0, 2**BitsStored - 1]`` for unsigned data, signed range when
       ``PixelRepresentation == 1``, mapped through the rescale; the LUT output range when a
       LUT or window was applied):

       * ``"max"`` (default, GLoRIA / MGCA / datasets.md sections 1.3 and 2.0):
         ``(x - lo) / (x.max() - lo)``, so the brightest stored pixel becomes 1; for unsigned data
         this is exactly ``x / x.max()``. An image with ``x.max() == lo`` gives zeros.
       * ``"bits"``: ``(x - lo) / (hi - lo)``; a 12-bit image in a 16-bit container is divided
         by 4095, never by 65535.

       Values are clipped to ``[0, 1]``;
    5. ``MONOCHROME1`` is inverted (``1 - y``) so that bone is bright, as for ``MONOCHROME2``.

    ``quantize=True`` rounds the result to multiples of 1/255, reproducing the 8-bit
    intermediate image of the reference codes.

    Raises :class:`ImageReadError` (a ``ValueError``) on any failure: missing or unreadable
    file, empty file, unknown format, truncated or corrupt data, missing DICOM pixel data or
    decoder, non-grayscale DICOM, colour image with ``allow_color=False``, zero-sized image.
    """
    if dicom_scaling not in ("max", "bits"):
        raise ValueError(f"dicom_scaling must be 'max' or 'bits', got {dicom_scaling!r}")
    data = _read_bytes(path)
    fmt = _sniff(data, path)
    if fmt == "dcm":
        img = _decode_dicom(data, path, dicom_scaling=dicom_scaling, apply_voi=apply_voi)
    else:
        img = _decode_pil(data, path, allow_color=allow_color)
    if img.ndim != 2 or img.shape[0] == 0 or img.shape[1] == 0:
        raise ImageReadError(path, f"decoded to an unusable array of shape {img.shape}")
    if quantize:
        img = np.round(img * 255.0) / 255.0
    return np.ascontiguousarray(img, dtype=np.float32)


def _read_bytes(path: PathLike) -> bytes:
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise ImageReadError(path, "file not found") from None
    except OSError as exc:
        raise ImageReadError(path, f"{type(exc).__name__}: {exc.strerror or exc}") from exc
    if not data:
        raise ImageReadError(path, "file is empty")
    return data


def _decode_pil(data: bytes, path: PathLike, *, allow_color: bool) -> np.ndarray:
    from PIL import Image, ImageFile

    # Pillow raises on truncated data unless someone set this global switch; keep failing then.
    if ImageFile.LOAD_TRUNCATED_IMAGES and data.startswith(_JPEG_MAGIC):
        if b"\xff\xd9" not in data[-64:]:
            raise ImageReadError(path, "truncated JPEG (no end-of-image marker)")
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()  # forces the full decode: truncated or corrupt data fails here
            mode = im.mode
            if mode == "P":
                im = im.convert("RGBA" if "transparency" in im.info else "RGB")
                mode = im.mode
            arr = np.asarray(im)
    except ImageReadError:
        raise
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, EOFError, ...
        raise ImageReadError(path, f"corrupt or truncated image data ({type(exc).__name__}: {exc})") from exc

    if mode == "1":
        return arr.astype(np.float32)
    if mode in ("L", "LA"):
        gray = arr if arr.ndim == 2 else arr[..., 0]
        return gray.astype(np.float32) / 255.0
    if mode.startswith("I;16"):
        return arr.astype(np.float32) / 65535.0
    if mode == "I":  # 16-bit PNGs decode to 32-bit "I" in some Pillow versions
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise ImageReadError(path, "32-bit integer pixel values outside the 16-bit range")
        return arr.astype(np.float32) / 65535.0
    if mode in ("RGB", "RGBA"):
        rgb = arr[..., :3]
        if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
            return rgb[..., 0].astype(np.float32) / 255.0
        if not allow_color:
            raise ImageReadError(path, f"colour image (mode {mode}) where grayscale was expected")
        luma = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        return np.clip(luma / 255.0, 0.0, 1.0)
    raise ImageReadError(path, f"unsupported image mode {mode!r} (expected grayscale or RGB)")


def _decode_dicom(data: bytes, path: PathLike, *, dicom_scaling: str, apply_voi: bool) -> np.ndarray:
    import pydicom
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    force = data[128:132] != b"DICM"
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=force)
    except Exception as exc:
        raise ImageReadError(path, f"unreadable DICOM ({type(exc).__name__}: {exc})") from exc
    if "PixelData" not in ds:
        raise ImageReadError(path, "DICOM has no PixelData element")
    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if photometric not in ("MONOCHROME1", "MONOCHROME2") or samples != 1:
        raise ImageReadError(
            path,
            f"non-grayscale DICOM (PhotometricInterpretation {photometric or 'missing'!r}, "
            f"SamplesPerPixel {samples})",
        )
    if frames != 1:
        raise ImageReadError(path, f"multi-frame DICOM ({frames} frames) where one image was expected")
    try:
        stored = ds.pixel_array
        lo, hi = _stored_range(ds)
        x = apply_modality_lut(stored, ds)
        lo, hi = _after_modality_range(ds, lo, hi)
        if apply_voi:
            if _has_voi_lut(ds):
                x = apply_voi_lut(x, ds, prefer_lut=True)
                bits = int(ds.VOILUTSequence[0].LUTDescriptor[2])
                lo, hi = 0.0, float(2**bits - 1)
            elif "WindowCenter" in ds and "WindowWidth" in ds:
                # pydicom maps the window onto the range computed in _after_modality_range
                x = apply_voi_lut(x, ds, prefer_lut=False)
    except ImageReadError:
        raise
    except Exception as exc:  # missing decoder, bad buffer size, bad LUT, ...
        raise ImageReadError(path, f"cannot decode DICOM pixel data ({type(exc).__name__}: {exc})") from exc

    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ImageReadError(path, f"DICOM pixel array has shape {x.shape}, expected (rows, columns)")
    if dicom_scaling == "max":
        top = float(x.max()) if x.size else lo
        y = (x - lo) / (top - lo) if top > lo else np.zeros_like(x)
    else:
        y = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
    y = np.clip(y, 0.0, 1.0)
    if photometric == "MONOCHROME1":
        y = 1.0 - y
    return y.astype(np.float32)


def _stored_range(ds) -> tuple[float, float]:
    bits = int(ds.BitsStored)
    if int(ds.get("PixelRepresentation", 0)) == 1:
        return float(-(2 ** (bits - 1))), float(2 ** (bits - 1) - 1)
    return 0.0, float(2**bits - 1)


def _after_modality_range(ds, lo: float, hi: float) -> tuple[float, float]:
    if ds.get("ModalityLUTSequence"):
        bits = int(ds.ModalityLUTSequence[0].LUTDescriptor[2])
        return 0.0, float(2**bits - 1)
    # pydicom rescales (and maps windows) only when both attributes are present; so do we
    slope = ds.get("RescaleSlope", None)
    intercept = ds.get("RescaleIntercept", None)
    if slope is None or intercept is None:
        return lo, hi
    a, b = lo * float(slope) + float(intercept), hi * float(slope) + float(intercept)
    return min(a, b), max(a, b)


def _has_voi_lut(ds) -> bool:
    seq = ds.get("VOILUTSequence")
    return bool(seq) and "LUTDescriptor" in seq[0] and "LUTData" in seq[0]


@dataclass(frozen=True)
class ImageInfo:
    """Header facts of an image file: ``format`` in ``png``, ``jpg``, ``dcm``;
    ``photometric`` is the DICOM PhotometricInterpretation (``None`` for PNG / JPEG)."""

    height: int
    width: int
    format: str
    photometric: str | None = None


def probe_image(path: PathLike) -> ImageInfo:
    """Read the size and format of an image from its header, without decoding pixels.

    Raises :class:`ImageReadError` like :func:`read_image` (header problems only: a file whose
    pixel data is truncated may still probe fine).
    """
    data = _read_bytes(path)
    fmt = _sniff(data, path)
    if fmt == "dcm":
        import pydicom

        try:
            ds = pydicom.dcmread(io.BytesIO(data), force=data[128:132] != b"DICM", stop_before_pixels=True)
            rows, cols = int(ds.Rows), int(ds.Columns)
        except Exception as exc:
            raise ImageReadError(path, f"unreadable DICOM header ({type(exc).__name__}: {exc})") from exc
        photometric = str(ds.get("PhotometricInterpretation", "")).strip() or None
        return ImageInfo(rows, cols, "dcm", photometric)
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            width, height = im.size
    except Exception as exc:
        raise ImageReadError(path, f"unreadable image header ({type(exc).__name__}: {exc})") from exc
    return ImageInfo(height, width, fmt)


# --------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Geometry:
    """Axis-aligned affine map from input pixel coordinates to output pixel coordinates.

    ``x' = sx * x + tx`` and ``y' = sy * y + ty``, coordinates with the origin at the top-left
    corner of the top-left pixel, x to the right, y downward (datasets.md section 0), so a box
    ``xyxy`` maps corner by corner. ``out_h`` / ``out_w`` is the output image size.
    """

    sx: float
    sy: float
    tx: float
    ty: float
    out_h: int
    out_w: int

    @staticmethod
    def identity(h: int, w: int) -> "Geometry":
        return Geometry(1.0, 1.0, 0.0, 0.0, h, w)

    def then(self, other: "Geometry") -> "Geometry":
        """The map that applies ``self`` first and ``other`` second."""
        return Geometry(
            other.sx * self.sx,
            other.sy * self.sy,
            other.sx * self.tx + other.tx,
            other.sy * self.ty + other.ty,
            other.out_h,
            other.out_w,
        )

    def map_points(self, xy: np.ndarray) -> np.ndarray:
        """Map an ``(N, 2)`` array of ``(x, y)`` points; returns ``float64`` ``(N, 2)``."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        return np.stack([xy[:, 0] * self.sx + self.tx, xy[:, 1] * self.sy + self.ty], axis=1)

    def map_boxes(self, boxes: np.ndarray, clip: bool = False) -> np.ndarray:
        """Map ``(N, 4)`` ``xyxy`` boxes; with ``clip`` they are clipped to the output image."""
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        out = np.stack(
            [b[:, 0] * self.sx + self.tx, b[:, 1] * self.sy + self.ty,
             b[:, 2] * self.sx + self.tx, b[:, 3] * self.sy + self.ty],
            axis=1,
        )
        if clip:
            out[:, [0, 2]] = out[:, [0, 2]].clip(0, self.out_w)
            out[:, [1, 3]] = out[:, [1, 3]].clip(0, self.out_h)
        return out


# --------------------------------------------------------------------------------------------
# Resizing, padding, cropping (numpy, any float HxW array: images and soft masks alike)
# --------------------------------------------------------------------------------------------


def _area_resize_axis(a: np.ndarray, n_out: int, axis: int) -> np.ndarray:
    """Exact area averaging along one axis: output cell i averages input over
    ``[i * n_in / n_out, (i + 1) * n_in / n_out)``, fractional pixels weighted by coverage."""
    n_in = a.shape[axis]
    if n_in == n_out:
        return a
    a = np.moveaxis(a, axis, 0).astype(np.float64, copy=False)
    cum = np.concatenate([np.zeros((1,) + a.shape[1:]), np.cumsum(a, axis=0)], axis=0)
    edges = np.arange(n_out + 1, dtype=np.float64) * n_in / n_out
    idx = np.minimum(np.floor(edges).astype(np.int64), n_in - 1)
    frac = (edges - idx).reshape((-1,) + (1,) * (a.ndim - 1))
    integral = cum[idx] + frac * a[idx]  # integral of the piecewise-constant signal up to edges
    out = (integral[1:] - integral[:-1]) * (n_out / n_in)
    return np.moveaxis(out, 0, axis)


def resize(
    img: np.ndarray, out_hw: tuple[int, int], interpolation: Literal["area", "bilinear"] = "area"
) -> np.ndarray:
    """Resize a ``(H, W)`` float array to ``out_hw`` (no aspect preservation); returns ``float32``.

    ``"area"``: exact area averaging (equals OpenCV ``INTER_AREA`` when shrinking; when
    enlarging it replicates pixels and blends the cells that straddle two inputs).
    ``"bilinear"``: ``torch`` bilinear with antialiasing (torchvision ``Resize`` semantics).
    """
    img = np.asarray(img)
    if img.ndim != 2:
        raise ValueError(f"resize expects an (H, W) array, got shape {img.shape}")
    out_h, out_w = int(out_hw[0]), int(out_hw[1])
    if out_h < 1 or out_w < 1:
        raise ValueError(f"output size must be positive, got {(out_h, out_w)}")
    if interpolation == "area":
        out = _area_resize_axis(_area_resize_axis(img, out_h, 0), out_w, 1)
        return np.ascontiguousarray(out, dtype=np.float32)
    if interpolation == "bilinear":
        import torch
        import torch.nn.functional as F

        t = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32))[None, None]
        out = F.interpolate(t, size=(out_h, out_w), mode="bilinear", align_corners=False, antialias=True)
        return out[0, 0].numpy()
    raise ValueError(f"unknown interpolation {interpolation!r}")


def letterbox(img: np.ndarray, size: int = 256) -> tuple[np.ndarray, Geometry]:
    """Resize so the longer side equals ``size`` (area averaging), then zero-pad to ``size x size``.

    The short side becomes ``int(short * (size / long))`` (truncated, at least 1), as in the
    reference codes; padding is split ``floor`` before / ``ceil`` after. Returns the
    ``float32`` ``(size, size)`` image and the :class:`Geometry` of the step. The geometry uses
    the exact per-axis scales ``new_w / w`` and ``new_h / h``; datasets.md's single factor
    ``s = size / max(h, w)`` equals them on the long axis and differs by less than one output
    pixel on the short axis.
    """
    img = np.asarray(img)
    if img.ndim != 2 or img.shape[0] < 1 or img.shape[1] < 1:
        raise ValueError(f"letterbox expects a non-empty (H, W) array, got shape {img.shape}")
    h, w = img.shape
    if h >= w:
        new_h, new_w = size, max(1, int(w * (size / h)))
    else:
        new_h, new_w = max(1, int(h * (size / w))), size
    resized = resize(img, (new_h, new_w), "area")
    top, left = (size - new_h) // 2, (size - new_w) // 2
    out = np.zeros((size, size), dtype=np.float32)
    out[top : top + new_h, left : left + new_w] = resized
    return out, Geometry(new_w / w, new_h / h, float(left), float(top), size, size)


def resize_shorter_side(
    img: np.ndarray, size: int, interpolation: Literal["area", "bilinear"] = "bilinear"
) -> tuple[np.ndarray, Geometry]:
    """Resize so the shorter side equals ``size``, keeping the aspect ratio (torchvision
    ``Resize(int)``: the longer side becomes ``int(size * long / short)``)."""
    img = np.asarray(img)
    if img.ndim != 2 or img.shape[0] < 1 or img.shape[1] < 1:
        raise ValueError(f"resize_shorter_side expects a non-empty (H, W) array, got shape {img.shape}")
    h, w = img.shape
    if h <= w:
        new_h, new_w = size, int(size * w / h)
    else:
        new_h, new_w = int(size * h / w), size
    out = resize(img, (new_h, new_w), interpolation)
    return out, Geometry(new_w / w, new_h / h, 0.0, 0.0, new_h, new_w)


def center_crop(img: np.ndarray, size: int) -> tuple[np.ndarray, Geometry]:
    """Crop the central ``size x size`` window (offset ``round((H - size) / 2)``, torchvision's rule).

    Raises ``ValueError`` when the image is smaller than ``size`` on either side.
    """
    h, w = np.asarray(img).shape[:2]
    _check_crop(h, w, size)
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return _crop(img, top, left, size)


def random_crop(
    img: np.ndarray, size: int, rng: np.random.Generator | None = None
) -> tuple[np.ndarray, Geometry]:
    """Crop a uniformly random ``size x size`` window.

    With ``rng=None`` the offsets come from torch's global generator, which DataLoader workers
    seed individually (numpy's global generator is not re-seeded per worker).
    """
    h, w = np.asarray(img).shape[:2]
    _check_crop(h, w, size)
    if rng is None:
        import torch

        top = int(torch.randint(0, h - size + 1, ()).item())
        left = int(torch.randint(0, w - size + 1, ()).item())
    else:
        top = int(rng.integers(0, h - size + 1))
        left = int(rng.integers(0, w - size + 1))
    return _crop(img, top, left, size)


def horizontal_flip(img: np.ndarray) -> tuple[np.ndarray, Geometry]:
    """Mirror left-right; the map is ``x' = w - x`` (so a box's x1 and x2 swap roles)."""
    a = np.asarray(img)
    h, w = a.shape[:2]
    return np.ascontiguousarray(a[:, ::-1]), Geometry(-1.0, 1.0, float(w), 0.0, h, w)


def _check_crop(h: int, w: int, size: int) -> None:
    if size < 1 or h < size or w < size:
        raise ValueError(f"cannot crop {size}x{size} from an image of size {h}x{w}")


def _crop(img: np.ndarray, top: int, left: int, size: int) -> tuple[np.ndarray, Geometry]:
    out = np.ascontiguousarray(np.asarray(img)[top : top + size, left : left + size])
    return out, Geometry(1.0, 1.0, -float(left), -float(top), size, size)


# --------------------------------------------------------------------------------------------
# Tensors
# --------------------------------------------------------------------------------------------


def to_tensor(img: np.ndarray, channels: int = 3) -> "torch.Tensor":
    """``(H, W)`` float array in ``[0, 1]`` -> ``torch.float32`` ``(channels, H, W)``, the gray
    channel replicated (no rescaling: inputs are already in ``[0, 1]``)."""
    import torch

    img = np.asarray(img, dtype=np.float32)
    if img.ndim != 2:
        raise ValueError(f"to_tensor expects an (H, W) array, got shape {img.shape}")
    t = torch.from_numpy(np.ascontiguousarray(img))
    return t.unsqueeze(0).expand(channels, -1, -1).contiguous()


def normalize(t: "torch.Tensor", mean: Sequence[float], std: Sequence[float]) -> "torch.Tensor":
    """Per-channel ``(t - mean) / std`` on a ``(C, H, W)`` tensor; returns a new tensor."""
    import torch

    if t.ndim != 3 or t.shape[0] != len(mean) or len(mean) != len(std):
        raise ValueError(f"normalize: tensor {tuple(t.shape)} vs mean/std of length {len(mean)}/{len(std)}")
    m = torch.as_tensor(mean, dtype=t.dtype, device=t.device).view(-1, 1, 1)
    s = torch.as_tensor(std, dtype=t.dtype, device=t.device).view(-1, 1, 1)
    return (t - m) / s


class CXRTransform:
    """The shared pipeline of datasets.md section 2.0 as one callable.

    ``letterbox(resize_to)`` -> ``random_crop(crop)`` if ``train`` else ``center_crop(crop)`` ->
    replicate to 3 channels -> ``normalize(mean, std)``. Input: ``float`` ``(H, W)`` in
    ``[0, 1]`` (what :func:`read_image` returns). Output: ``torch.float32`` ``(3, crop, crop)``.
    Defaults are MGCA's: 256, 224, mean = std = 0.5, no flips.

    ``hflip``: probability of a left-right mirror after the crop, in training only. Chest
    X-rays are not mirror-symmetric (the report's "left"/"right" and the heart's side would no
    longer match the image), which is why the suite's default is 0; the alignment control's
    flip-augmented arm (datasets.md section 4.9) sets it to 0.5 to show that laterality is lost.
    """

    def __init__(
        self,
        resize_to: int = 256,
        crop: int = 224,
        train: bool = False,
        mean: Sequence[float] = MGCA_MEAN,
        std: Sequence[float] = MGCA_STD,
        hflip: float = 0.0,
    ):
        if crop > resize_to:
            raise ValueError(f"crop {crop} larger than the letterbox size {resize_to}")
        if not 0.0 <= float(hflip) <= 1.0:
            raise ValueError(f"hflip is a probability in [0, 1], got {hflip}")
        self.resize_to, self.crop, self.train = int(resize_to), int(crop), bool(train)
        self.mean, self.std, self.hflip = tuple(mean), tuple(std), float(hflip)

    def apply(
        self, img: np.ndarray, rng: np.random.Generator | None = None
    ) -> tuple["torch.Tensor", Geometry]:
        """Transform ``img``; also return the native -> output :class:`Geometry`."""
        h, w = np.asarray(img).shape[:2]
        boxed, g1 = letterbox(img, self.resize_to)
        if self.train:
            cropped, g2 = random_crop(boxed, self.crop, rng)
        else:
            cropped, g2 = center_crop(boxed, self.crop)
        geometry = Geometry.identity(h, w).then(g1).then(g2)
        if self.train and self.hflip > 0 and _uniform(rng) < self.hflip:
            cropped, g3 = horizontal_flip(cropped)
            geometry = geometry.then(g3)
        t = normalize(to_tensor(cropped, len(self.mean)), self.mean, self.std)
        return t, geometry

    def __call__(self, img: np.ndarray, rng: np.random.Generator | None = None) -> "torch.Tensor":
        return self.apply(img, rng)[0]

    def __repr__(self) -> str:
        flip = f", hflip={self.hflip}" if self.hflip else ""
        return (
            f"CXRTransform(resize_to={self.resize_to}, crop={self.crop}, train={self.train}, "
            f"mean={self.mean}, std={self.std}{flip})"
        )


def _uniform(rng: np.random.Generator | None) -> float:
    """One draw in [0, 1) from ``rng``, or from torch's generator when None (as :func:`random_crop`)."""
    if rng is None:
        import torch

        return float(torch.rand(()).item())
    return float(rng.random())
