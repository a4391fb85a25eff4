"""Tiny synthetic image data for the image tests: two classes a model can tell apart, PNG/JPEG/DICOM writers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def pattern(label: int, rng: np.random.Generator, size: int = 32) -> np.ndarray:
    """Class 0: a bright square on the left; class 1: on the right; plus noise. ``(size, size)`` uint8."""
    img = rng.integers(0, 60, (size, size)).astype(np.uint8)
    q = size // 4
    col = q // 2 if label == 0 else size - q - q // 2
    img[q:q * 3, col:col + q] = 220
    return img


def write_png(path: Path, arr: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def image_folder(root: Path, n: int = 12, splits: tuple[str, ...] = ("train", "val", "test"),
                 classes: tuple[str, ...] = ("normal", "pneumonia"), seed: int = 0, fmt: str = "png") -> Path:
    """``root/{split}/{class}/k.png`` with ``n`` images per class and split (``splits=()``: ``root/{class}/``)."""
    rng = np.random.default_rng(seed)
    for split in splits or (None,):
        for k, c in enumerate(classes):
            for i in range(n):
                folder = root / split / c if split else root / c
                write_png(folder / f"{c}_{i}.{fmt}", pattern(k, rng))
    return root


def write_dicom(path: Path, pixels: np.ndarray, *, slope: float = 1.0, intercept: float = 0.0,
                photometric: str = "MONOCHROME2", window: tuple[float, float] | None = None,
                with_pixels: bool = True) -> Path:
    """A minimal valid DICOM file (explicit VR little endian) holding ``pixels`` (uint16 or uint8, 2-D)."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientID = "OT", "test"
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.Rows, ds.Columns = pixels.shape
    bits = 16 if pixels.dtype == np.uint16 else 8
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits, bits - 1, 0
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    if with_pixels:
        ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(str(path), enforce_file_format=True)
    return path
