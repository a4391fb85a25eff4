"""The input boundary for text data files: what a file really is, decided from its bytes, before any parser runs.

``check_text_file`` reads the whole file once (decompressing gzip on the way) and refuses, with one line naming the
file (and line) and the fix:

- compressions biolens does not read (bzip2, xz, zstd, zip/docx, 7z), detected by magic bytes, not by suffix;
- truncated or corrupt gzip (a missing end-of-stream marker, a bad CRC, junk after the last member);
- files that are not text: images (PNG, JPEG, GIF, TIFF, BMP, WebP, DICOM), PDFs, binary data (NUL bytes),
  UTF-16/32 text;
- text that is not UTF-8 (e.g. a Latin-1 header), with the line of the first bad byte.

A UTF-8 byte-order mark is accepted (``has_bom``; readers skip it). The verdict is cached per path, size and
modification time, so reading a file in several passes checks it once.
"""

from __future__ import annotations

import codecs
import gzip
import logging
import zlib
from dataclasses import dataclass
from pathlib import Path

from biolens.data.cachedir import file_stamp
from biolens.errors import DataError

log = logging.getLogger(__name__)

CHUNK = 1 << 20
UTF8_BOM = b"\xef\xbb\xbf"
GZIP_MAGIC = b"\x1f\x8b"
NEWLINE = b"\n"

# magic bytes → (what it is, how to fix it)
_UNSUPPORTED: tuple[tuple[bytes, int, str, str], ...] = (
    (b"BZh", 0, "bzip2-compressed", "decompress it (bunzip2) or recompress it with gzip"),
    (b"\xfd7zXZ\x00", 0, "xz-compressed", "decompress it (unxz) or recompress it with gzip"),
    (b"\x28\xb5\x2f\xfd", 0, "zstd-compressed", "decompress it (unzstd) or recompress it with gzip"),
    (b"PK\x03\x04", 0, "a zip archive (or an Office document)", "extract the data file, or save it as CSV/TSV"),
    (b"7z\xbc\xaf\x27\x1c", 0, "a 7z archive", "extract the data file"),
    (b"%PDF", 0, "a PDF document", "export the data as FASTA, CSV or TSV"),
    (b"\x89PNG\r\n\x1a\n", 0, "a PNG image", "give images to an image run (a folder or a CSV manifest of paths)"),
    (b"\xff\xd8\xff", 0, "a JPEG image", "give images to an image run (a folder or a CSV manifest of paths)"),
    (b"GIF8", 0, "a GIF image", "give images to an image run (a folder or a CSV manifest of paths)"),
    (b"II*\x00", 0, "a TIFF image", "give images to an image run (a folder or a CSV manifest of paths)"),
    (b"MM\x00*", 0, "a TIFF image", "give images to an image run (a folder or a CSV manifest of paths)"),
    (b"BM", 0, "a BMP image", "give images to an image run (a folder or a CSV manifest of paths)"),
    (b"DICM", 128, "a DICOM file", "give images to an image run (a folder or a CSV manifest of paths)"),
    (b"\xff\xfe\x00\x00", 0, "UTF-32 text", "save it as UTF-8"),
    (b"\xff\xfe", 0, "UTF-16 text", "save it as UTF-8"),
    (b"\xfe\xff", 0, "UTF-16 text", "save it as UTF-8"),
)


@dataclass(frozen=True)
class TextFile:
    """A checked text file: ``gzip`` (by magic bytes) and whether it starts with a UTF-8 byte-order mark."""

    path: Path
    gzip: bool
    bom: bool


_checked: dict[str, TextFile] = {}


def _what(head: bytes) -> tuple[str, str] | None:
    for magic, offset, what, fix in _UNSUPPORTED:
        if head[offset:offset + len(magic)] == magic:
            if magic == b"BM" and not _looks_like_bmp(head):
                continue
            return what, fix
    if head[8:12] == b"WEBP" and head[:4] == b"RIFF":
        return "a WebP image", "give images to an image run (a folder or a CSV manifest of paths)"
    return None


def _looks_like_bmp(head: bytes) -> bool:
    """``BM`` also starts ordinary text (a FASTA id, a CSV column); a real BMP has its header size at byte 14."""
    return len(head) >= 18 and int.from_bytes(head[14:18], "little") in (12, 40, 52, 56, 64, 108, 124)


def _chunks(path: Path, gz: bool):  # noqa: ANN202
    """The file's (decompressed) bytes in chunks; gzip errors become one-line DataErrors."""
    opener = gzip.open if gz else open
    try:
        with opener(path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                yield chunk
    except EOFError:
        raise DataError(f"{path} is a truncated gzip file (the compressed stream ends early); re-download or "
                        "recompress it") from None
    except (gzip.BadGzipFile, zlib.error) as e:
        raise DataError(f"{path} is a corrupt gzip file ({e}); re-download or recompress it") from None


def check_text_file(path: str | Path, what: str = "a FASTA, CSV or TSV file") -> TextFile:
    """Validate a text data file as a whole (see the module docstring); DataError naming the file and the fix."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"file not found: {p}; check the path")
    if p.is_dir():
        raise DataError(f"{p} is a directory; give {what}")
    if p.stat().st_size == 0:
        raise DataError(f"{p} is empty; give {what} with data in it")
    key = f"{p.resolve()}|{file_stamp(p)}"
    if key in _checked:
        return _checked[key]
    with open(p, "rb") as fh:
        raw = fh.read(512)
    gz = raw[:2] == GZIP_MAGIC
    found = _what(raw) if not gz else None
    if found:
        raise DataError(f"{p} is {found[0]}, not {what}; {found[1]}")
    decoder = codecs.getincrementaldecoder("utf-8")()
    line, offset, first, bom, bare_cr = 1, 0, True, False, False
    for chunk in _chunks(p, gz):
        if first:
            inner = _what(chunk[:512]) if gz else None
            if inner:
                raise DataError(f"{p} is gzip-compressed {inner[0]}, not {what}; {inner[1]}")
            bom = chunk.startswith(UTF8_BOM)
            first = False
        nul = chunk.find(b"\x00")
        if nul >= 0:
            at = line + chunk.count(NEWLINE, 0, nul)
            raise DataError(f"{p}:{at}: NUL byte at byte {offset + nul}: the file is binary or damaged, not {what}; "
                            "re-export it as plain text")
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError as e:
            at = line + chunk.count(NEWLINE, 0, e.start)
            raise DataError(f"{p}:{at}: not UTF-8 text (byte 0x{chunk[e.start]:02X} at byte {offset + e.start}, e.g. "
                            "Latin-1 or Windows-1252); save the file as UTF-8") from None
        line += chunk.count(NEWLINE)
        offset += len(chunk)
        bare_cr = bare_cr or (b"\r" in chunk and NEWLINE not in chunk)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise DataError(f"{p}:{line}: not UTF-8 text (the file ends inside a multi-byte character); save the file "
                        "as UTF-8") from None
    if first:
        raise DataError(f"{p} is empty after decompression; give {what} with data in it")
    if bare_cr and line == 1:
        raise DataError(f"{p} ends its lines with CR only (old Mac line endings), so it reads as one line; convert "
                        "them to LF (e.g. mac2unix, or tr '\\r' '\\n')")
    result = TextFile(p, gz, bom)
    _checked[key] = result
    return result


def is_gzip(path: str | Path) -> bool:
    """Whether the file is gzip-compressed, by its magic bytes (not its suffix)."""
    with open(path, "rb") as fh:
        return fh.read(2) == GZIP_MAGIC


def open_text(path: str | Path):  # noqa: ANN201
    """Text handle on a (possibly gzip-compressed, by magic bytes) UTF-8 file, a byte-order mark skipped."""
    return gzip.open(path, "rt", encoding="utf-8-sig") if is_gzip(path) else open(path, encoding="utf-8-sig")
