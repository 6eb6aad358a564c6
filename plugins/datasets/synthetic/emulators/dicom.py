"""Single-frame grayscale DICOM files for the RSNA and SIIM emulations (datasets.md §4.3, §4.7).

:func:`dicom_bytes` encodes a display image (``float32`` in [0, 1], 1 = bright = bone) as a
Secondary Capture CR image, Explicit VR Little Endian, with a 128-byte preamble and file meta.
Pixel storage, by ``bits``:

* ``8``: ``BitsAllocated = BitsStored = 8``, ``HighBit = 7``, stored value
  ``round(255 * I)`` (:func:`..render.to_uint8`);
* ``12``: ``BitsAllocated = 16``, ``BitsStored = 12``, ``HighBit = 11``, stored value
  ``round(4095 * I)`` (:func:`..render.to_uint12`) in a 16-bit little-endian container.

``MONOCHROME1`` stores ``max - value`` (``max`` = 255 or 4095), so after the standard
inversion a reader recovers the same display image; ``MONOCHROME2`` stores the value.
No RescaleSlope / Intercept and no window or VOI LUT are written: a reader scaling by
``2**BitsStored - 1`` gets the display image back within quantization; the GLoRIA/MGCA
"divide by the maximum" scaling gets it up to a per-image gain.

Nothing time-dependent is written (``StudyDate`` is the fixed placeholder ``19010101``); UIDs
come from the caller.
"""

from __future__ import annotations

import io
from typing import Mapping, Optional

import numpy as np

from ..render import to_uint8, to_uint12

# pydicom's registered prefix for generated UIDs; the emulators append digits derived from (seed, index).
PYDICOM_ROOT = "1.2.826.0.1.3680043.8.498."
IMPLEMENTATION_UID = PYDICOM_ROOT + "1"
IMPLEMENTATION_NAME = "PLACEBENCH_EMU"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"


def stored_pixels(image: np.ndarray, bits: int, photometric: str) -> np.ndarray:
    """Stored values of a display image (see the module docstring)."""
    if bits == 8:
        v = to_uint8(image)
        top = np.uint8(255)
    elif bits == 12:
        v = to_uint12(image)
        top = np.uint16(4095)
    else:
        raise ValueError(f"bits must be 8 or 12, got {bits}")
    if photometric == "MONOCHROME1":
        return (top - v).astype(v.dtype)
    if photometric != "MONOCHROME2":
        raise ValueError(f"photometric must be MONOCHROME1 or MONOCHROME2, got {photometric!r}")
    return v


def dicom_bytes(image: np.ndarray, *, sop_instance_uid: str, study_uid: str, series_uid: str,
                patient_id: str, bits: int = 8, photometric: str = "MONOCHROME2",
                view_position: str = "PA", sex: str = "M", age: Optional[int] = None,
                series_description: Optional[str] = None,
                extra: Optional[Mapping[str, object]] = None) -> bytes:
    """Encode one display image as a DICOM file (bytes). ``extra``: further keyword -> value
    elements set on the dataset."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, UID

    pixels = stored_pixels(image, bits, photometric)
    rows, cols = pixels.shape

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(SECONDARY_CAPTURE)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID(IMPLEMENTATION_UID)
    meta.ImplementationVersionName = IMPLEMENTATION_NAME

    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = SECONDARY_CAPTURE
    ds.SOPInstanceUID = sop_instance_uid
    ds.StudyDate = "19010101"
    ds.StudyTime = "000000.00"
    ds.AccessionNumber = ""
    ds.Modality = "CR"
    ds.ConversionType = "WSD"
    ds.ReferringPhysicianName = ""
    ds.SeriesDescription = series_description if series_description is not None else f"view: {view_position}"
    ds.PatientName = patient_id
    ds.PatientID = patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = sex
    if age is not None:
        ds.PatientAge = f"{int(age):03d}Y"
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = view_position
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = ""
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.PatientOrientation = ""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.Rows = int(rows)
    ds.Columns = int(cols)
    ds.PixelSpacing = [0.168, 0.168]
    ds.BitsAllocated = 8 if bits == 8 else 16
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    for key, value in (extra or {}).items():
        setattr(ds, key, value)
    ds.PixelData = pixels.astype("<u2").tobytes() if bits == 12 else pixels.tobytes()

    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()

