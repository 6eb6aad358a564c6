"""Data layer of PLACE-Bench: shared building blocks used by every dataset reader.

Modules:

* ``report_text`` -- sentence spans and section extraction for radiology reports
  (MIMIC-CXR free text, IU X-ray / OpenI).
* ``images`` -- the shared image reader (PNG, JPEG, DICOM -> float32 HxW in [0, 1]) and the
  letterbox / crop / normalize pipeline of the GLoRIA / MGCA family.
* ``rle`` -- canonical column-major mask RLE and the SIIM-ACR relative RLE parser.

This package deliberately imports nothing, so importing one module never pulls in the heavy
dependencies (pydicom, torch) of another.
"""
