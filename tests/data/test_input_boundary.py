"""The input boundary: what a file is, decided from its bytes (sniff), and what readers accept after it.

The refusals of every malformed kind are exercised at every entry point by the fuzz corpus (tests/fuzz); here the
exact messages, and the cases that must be *accepted*: a UTF-8 byte-order mark, gzip detected without a .gz
suffix, EXIF-rotated photos, GIF/WebP, one output schema across labelled and unlabelled files.
"""

from __future__ import annotations

import gzip
import io
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from biolens.bundle import is_run_folder, make_run_dir, save_weights
from biolens.data.images.decode import DecodeError, decode_image, probe_channels
from biolens.data.readers import iter_chunks, read_source
from biolens.data.sniff import check_text_file
from biolens.errors import ConfigError, DataError
from tests.conftest import planted_dna, write_fasta
from tests.fuzz.corpus import png_bomb


@pytest.mark.parametrize(("data", "message"), [
    (b"BZh91AY&SY" + bytes(30), "is bzip2-compressed, not a FASTA, CSV or TSV file; decompress it"),
    (b"\xfd7zXZ\x00" + bytes(30), "is xz-compressed"),
    (b"\x28\xb5\x2f\xfd" + bytes(30), "is zstd-compressed"),
    (b"\x89PNG\r\n\x1a\n" + bytes(30), "is a PNG image, not a FASTA, CSV or TSV file; give images to an image run"),
    (bytes(128) + b"DICM" + bytes(30), "is a DICOM file"),
    (b"\xff\xfe>\x00a\x00", "is UTF-16 text, not a FASTA, CSV or TSV file; save it as UTF-8"),
    (b">a\nAC\x00GT\n", ":2: NUL byte at byte 5"),
    (b">a label=caf\xe9\nACGT\n", ":1: not UTF-8 text (byte 0xE9 at byte 12"),
    (gzip.compress(b">a\nACGT\n")[:-8], "is a truncated gzip file (the compressed stream ends early)"),
    (gzip.compress(b">a\nACGT\n") + b"junk", "is a corrupt gzip file"),
    (b">a\rACGT\r>b\rAC\r", "ends its lines with CR only"),
    (gzip.compress(b"\x89PNG\r\n\x1a\n" + bytes(30)), "is gzip-compressed a PNG image"),
])
def test_what_a_file_really_is_is_one_line(tmp_path: Path, data: bytes, message: str):
    p = tmp_path / "input.fa"
    p.write_bytes(data)
    with pytest.raises(DataError) as e:
        check_text_file(p)
    assert message in str(e.value) and str(p) in str(e.value) and "\n" not in str(e.value)


def test_bom_and_gzip_without_suffix_are_read(tmp_path: Path):
    seqs, labels = planted_dna(n=20)
    text = "".join(f">s{i} label={lab}\n{s}\n" for i, (s, lab) in enumerate(zip(seqs, labels)))
    bom = tmp_path / "bom.fa"
    bom.write_bytes(b"\xef\xbb\xbf" + text.encode())
    recs = read_source(str(bom))
    assert recs.ids[0] == "s0" and recs.seqs == seqs and recs.labels == labels
    table = tmp_path / "bom.csv"
    table.write_bytes(b"\xef\xbb\xbf" + ("id,sequence,label\n" + "".join(
        f"s{i},{s},{lab}\n" for i, (s, lab) in enumerate(zip(seqs, labels)))).encode())
    assert read_source(str(table)).seqs == seqs  # the first column is "id", not "\ufeffid"
    hidden = tmp_path / "packed.fa"  # gzip by content, no .gz suffix
    hidden.write_bytes(gzip.compress(text.encode()))
    assert read_source(str(hidden)).seqs == seqs
    assert sum(len(r) for r in iter_chunks(hidden, 7)) == 20


def test_labels_that_stop_half_way_are_refused_when_streaming(tmp_path: Path):
    seqs, labels = planted_dna(n=30)
    p = write_fasta(tmp_path / "x.fa", seqs, labels)
    lines = p.read_text().splitlines()
    lines[40] = lines[40].split(" label=")[0]  # record 21 loses its label
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"x.fa:41: header '>s21' has no label while earlier headers have one"):
        for _ in iter_chunks(p, 8):
            pass


def _jpeg_with_orientation(path: Path, orientation: int) -> np.ndarray:
    """A 20 × 10 (w × h) JPEG whose left half is white, saved with an EXIF orientation tag."""
    arr = np.zeros((10, 20), dtype=np.uint8)
    arr[:, :10] = 255
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(arr).save(path, exif=exif.tobytes(), quality=100)
    return arr


def test_exif_orientation_is_applied(tmp_path: Path):
    _jpeg_with_orientation(tmp_path / "r.jpg", 6)  # "rotate 90° clockwise to display"
    shown = decode_image(tmp_path / "r.jpg", 20, 1)[0]
    assert shown[:5].mean() > 200 and shown[-5:].mean() < 50  # the white half is now on top, not on the left
    _jpeg_with_orientation(tmp_path / "n.jpg", 1)
    plain = decode_image(tmp_path / "n.jpg", 20, 1)[0]
    assert plain[:, :5].mean() > 200 and plain[:, -5:].mean() < 50


def test_pixel_limit_is_read_from_the_header(tmp_path: Path):
    (tmp_path / "big.png").write_bytes(png_bomb(10_000, 10_000))  # 100 M pixels declared, a few bytes on disk
    with pytest.raises(DecodeError, match=r"10000 × 10000 = 100,000,000 pixels, over the limit of 40,000,000 "
                                          r"\(data.image.max_pixels\)"):
        probe_channels(tmp_path / "big.png")
    (tmp_path / "bomb.png").write_bytes(png_bomb())  # 10^10: Pillow's own guard refuses it even earlier
    with pytest.raises(DecodeError, match="decompression bomb refused"):
        probe_channels(tmp_path / "bomb.png")
    Image.fromarray(np.zeros((30, 40), dtype=np.uint8)).save(tmp_path / "small.png")
    assert probe_channels(tmp_path / "small.png") == 1
    with pytest.raises(DecodeError, match="over the limit of 1,000"):
        decode_image(tmp_path / "small.png", 8, 1, max_pixels=1000)


def test_gif_and_webp_are_images(tmp_path: Path):
    frames = [Image.fromarray(np.full((12, 12), v, dtype=np.uint8)) for v in (30, 200)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    Image.fromarray(np.full((12, 12, 3), 90, dtype=np.uint8)).save(tmp_path / "x.webp", lossless=True)
    assert decode_image(tmp_path / "anim.gif", 8, 1).mean() == pytest.approx(30, abs=2)  # the first frame
    assert decode_image(tmp_path / "x.webp", 8, 3).mean() == pytest.approx(90, abs=2)


def test_overwrite_only_replaces_run_folders_and_never_the_input(tmp_path: Path):
    user = tmp_path / "notes"
    user.mkdir()
    (user / "thesis.docx").write_bytes(b"precious")
    with pytest.raises(ConfigError, match="is not a biolens run folder .* will not delete it"):
        make_run_dir(user, overwrite=True)
    assert (user / "thesis.docx").read_bytes() == b"precious"
    run = make_run_dir(tmp_path / "run")
    assert is_run_folder(run)
    (run / "data.fa").write_text(">a\nACGT\n")
    with pytest.raises(ConfigError, match="holds the training data"):
        make_run_dir(run, overwrite=True, keep=[run / "data.fa"])
    assert (run / "data.fa").exists()
    make_run_dir(run, overwrite=True)  # a run folder, no input inside: replaced
    assert not (run / "data.fa").exists() and is_run_folder(run)


def test_weights_are_shared_like_the_rest_of_the_run(tmp_path: Path):
    import torch

    save_weights(torch.nn.Linear(2, 2), tmp_path / "model.safetensors")
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(tmp_path / "model.safetensors").st_mode & 0o777 == 0o666 & ~umask


def test_predict_writes_one_schema_across_labelled_and_unlabelled_files(trained_run: Path, tmp_path: Path):
    from biolens.tasks import Predictor

    seqs, labels = planted_dna(n=12, seed=9)
    labelled = write_fasta(tmp_path / "l.fa", seqs[:6], labels[:6])
    plain = write_fasta(tmp_path / "u.fa", seqs[6:])
    out = tmp_path / "p.csv"
    n = Predictor.load(trained_run).predict_files([plain, labelled], out, chunk_size=4)
    frame = pd.read_csv(out, keep_default_na=False)
    assert n == 12 and list(frame.columns[:2]) == ["id", "label"]
    assert list(frame["label"]) == [""] * 6 + labels[:6]
    assert frame.shape[1] == len(pd.read_csv(io.StringIO(out.read_text().splitlines()[0])).columns)
