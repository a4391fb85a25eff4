"""A corpus of malformed inputs, made fresh in a folder: sequence files, tables, configs, images, DICOM, run folders
and HTTP bodies.

Every case is something a careless user or a hostile client really sends: files that are not what their name says
(binary junk, images, PDFs, bzip2/xz/zip/zstd, UTF-16), text that is not UTF-8, truncated and corrupt gzip, NUL
bytes, empty and header-only records, broken labels and splits, bad YAML and out-of-range options, decompression
bombs, tampered run folders, abusive JSON. Each case is expected to be refused with exit code 2 and one line.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import shutil
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

_RNG = np.random.default_rng(7)
GOOD_SEQS = ["ACGTTATAATGCCGATTGCAACGTGGCTAGCTAGGACTTTACGATCGA", "TTGACAGGCTAGCATCGATCGGGCTAGCTAATCGATCGTTAGCCGATG"] + [
    "".join(_RNG.choice(list("ACGT"), 48)) for _ in range(58)]  # 60 distinct records: enough to split and train


@dataclass
class Case:
    name: str
    kind: str  # seqfile | table | config | set | image_folder | manifest | run | http_json | http_files
    path: Path | None = None
    args: list[str] = field(default_factory=list)
    body: bytes | None = None
    files: list[tuple[str, bytes]] = field(default_factory=list)


def _fasta(records: list[tuple[str, str]]) -> bytes:
    return "".join(f">{h}\n{s}\n" for h, s in records).encode()


LABELS = ("background", "promoter")  # the classes of the session's trained run (tests/conftest.trained_run)


def _lab(i: int) -> str:
    return LABELS[i % 2]


def good_fasta() -> bytes:
    return _fasta([(f"s{i} label={_lab(i)}", s) for i, s in enumerate(GOOD_SEQS)])


def _png(w: int = 8, h: int = 8) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.zeros((h, w), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG whose header claims ``width × height`` pixels (the IDAT holds almost nothing)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data)


def _zstd_like(data: bytes) -> bytes:
    return b"\x28\xb5\x2f\xfd" + data  # the zstd magic; enough to be detected (and refused) as zstd


def _zip(data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("data.fa", data)
    return buf.getvalue()


def sequence_files(root: Path) -> list[Case]:
    """Malformed FASTA/CSV/TSV files, each refused by train, predict, evaluate, doctor data and explain."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    fa = good_fasta()
    gz = _gzip(fa)
    table = ("id,sequence,label\n" + "".join(f"s{i},{s},{_lab(i)}\n" for i, s in enumerate(GOOD_SEQS))).encode()
    raw: dict[str, bytes] = {}
    for k in range(6):
        for suffix in (".fa", ".csv", ".tsv", ".txt", ".fasta"):
            raw[f"junk{k}{suffix}"] = rng.integers(0, 256, 200 + 97 * k, dtype=np.uint8).tobytes()
    raw |= {
        "latin1_header.fa": b">s1 label=caf\xe9\nACGTACGT\n>s2 label=promoter\nACGTTTGA\n",
        "latin1_late.fa": fa + b">s99 label=\xe9t\xe9\nACGT\n",
        "cp1252_quotes.csv": b"id,sequence,label\ns1,ACGT,\x93background\x94\ns2,ACGA,promoter\n",
        "utf16le.fa": b"\xff\xfe" + fa.decode().encode("utf-16-le"),
        "utf16be.fa": b"\xfe\xff" + fa.decode().encode("utf-16-be"),
        "utf16_nobom.csv": table.decode().encode("utf-16-le"),
        "utf32.fa": b"\xff\xfe\x00\x00" + fa.decode().encode("utf-32-le"),
        "bz2.fa": bz2.compress(fa), "bz2.fa.bz2": bz2.compress(fa), "bz2_named_gz.fa.gz": bz2.compress(fa),
        "xz.fa": lzma.compress(fa), "xz.fa.xz": lzma.compress(fa), "xz.csv": lzma.compress(table),
        "zstd.fa.zst": _zstd_like(fa), "zstd.csv": _zstd_like(table),
        "zip.fa": _zip(fa), "zipped.csv.zip": _zip(table), "office.csv": _zip(table),
        "image.fa": _png(), "image.csv": _png(), "image.fa.gz": _gzip(_png()),
        "jpeg.fa": b"\xff\xd8\xff\xe0" + bytes(100), "gif.fa": b"GIF89a" + bytes(100),
        "tiff.fa": b"II*\x00" + bytes(100), "dicom.fa": bytes(128) + b"DICM" + bytes(100),
        "pdf.fa": b"%PDF-1.4\n" + bytes(50), "pdf.csv": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
        "trunc_gz_10.fa.gz": gz[:10], "trunc_gz_half.fa.gz": gz[: len(gz) // 2], "trunc_gz_last.fa.gz": gz[:-9],
        "gz_no_crc.fa.gz": gz[:-8], "gz_junk_after.fa.gz": gz + b"JUNKJUNKJUNK", "gz_bad_crc.fa.gz":
            gz[:-8] + struct.pack("<I", (zlib.crc32(fa) + 1) & 0xFFFFFFFF) + gz[-4:],
        "gz_empty.fa.gz": _gzip(b""), "gz_of_junk.fa.gz": _gzip(rng.integers(0, 256, 300, dtype=np.uint8).tobytes()),
        "trunc_gz.csv.gz": _gzip(table)[:-12], "gz_no_suffix.fa": gz[: len(gz) // 2],
        "empty.fa": b"", "empty.csv": b"", "spaces.fa": b"   \n\n  \n", "newlines.csv": b"\n\n\n",
        "header_only.fa": b">s1 label=background\n>s2 label=promoter\n", "one_header.fa": b">only label=promoter\n",
        "no_gt.fa": b"ACGTACGT\nACGTTTGA\n", "fastq.fq": b"@r1\nACGT\n+\nIIII\n", "fastq.fa": b"@r1\nACGT\n+\nIIII\n",
        "nul_in_seq.fa": fa.replace(b"ACGTTATAAT", b"ACGTT\x00TAAT", 1),
        "nul_in_header.fa": fa.replace(b"s1 label", b"s\x001 label", 1), "nul_only.fa": b"\x00" * 64,
        "star.fa": fa.replace(b"GCCGATT", b"GCC*ATT", 1), "digits.fa": fa.replace(b"GCCGATT", b"GCC1ATT", 1),
        "gap.fa": fa.replace(b"GCCGATT", b"GCC-ATT", 1), "at.fa": fa.replace(b"GCCGATT", b"GCC@ATT", 1),
        "mixed_tu.fa": _fasta([(f"a{i} label={_lab(i)}", "ACGTACGTACGT" * 3) for i in range(4)]
                              + [("u label=promoter", "ACGUACGUACGU" * 3)]),
        "mixed_protein.fa": _fasta([(f"p{i} label={_lab(i)}", "ACGTACGTACGTACGTACGTACGT") for i in range(20)]
                                   + [("q label=promoter", "MKLVWHHQRSTEEMKLVWHHQ")]),
        "partial_labels.fa": _fasta([("a label=promoter", GOOD_SEQS[0]), ("b", GOOD_SEQS[1]),
                                     ("c label=background", GOOD_SEQS[2])]),
        "unknown_label.fa": _fasta([(f"s{i} label={'enhancer' if i == 3 else _lab(i)}", s)
                                    for i, s in enumerate(GOOD_SEQS)]),
        "one_class.fa": _fasta([(f"s{i} label=promoter", s) for i, s in enumerate(GOOD_SEQS)]),
        "empty_label.fa": _fasta([(f"s{i} label=", s) for i, s in enumerate(GOOD_SEQS)]),
        "bad_split.fa": _fasta([(f"s{i} label={_lab(i)} split=holdout", s) for i, s in enumerate(GOOD_SEQS)]),
        "partial_split.fa": _fasta([(f"s{i} label={_lab(i)}" + (" split=train" if i else ""), s)
                                    for i, s in enumerate(GOOD_SEQS)]),
        "two_records.fa": _fasta([("a label=promoter", GOOD_SEQS[0]), ("b label=background", GOOD_SEQS[1])]),
        "cr_only.fa": fa.replace(b"\n", b"\r"),
        "header_only.csv": b"id,sequence,label\n", "header_only.tsv": b"id\tsequence\tlabel\n",
        "no_seq_col.csv": b"id,dna,label\ns1,ACGT,promoter\ns2,ACGA,background\n",
        "no_label_col.csv": b"id,sequence,class\ns1,ACGT,promoter\n",
        "empty_label_cell.csv": table.replace(b",promoter\n", b",\n", 1),
        "unterminated_quote.csv": b'id,sequence,label\ns1,"ACGT,promoter\ns2,ACGA,background\n',
        "wrong_delimiter.csv": table.replace(b",", b";"),
        "ragged.csv": b"id,sequence,label\ns1,ACGT\ns2,ACGA,promoter,extra,more\n",
        "numbers.csv": b"1,2,3\n4,5,6\n",
        "bad_split_col.csv": ("id,sequence,label,split\n" + "".join(f"s{i},{s},{_lab(i)},holdout\n"
                                                                     for i, s in enumerate(GOOD_SEQS))).encode(),
        "invalid_char.csv": table.replace(b"GCCGATT", b"GCC!ATT", 1),
        "space_seq.csv": b"id,sequence,label\ns1,,promoter\ns2,ACGA,background\n",
        "one_class.csv": table.replace(b",background\n", b",promoter\n"),
        "utf16.tsv": table.replace(b",", b"\t").decode().encode("utf-16"),
        "long_line.fa": _fasta([("big label=promoter", "ACGT" * 2_600_000)]
                               + [(f"s{i} label={_lab(i)}", s) for i, s in enumerate(GOOD_SEQS)]),
    }
    cases = []
    for name, data in raw.items():
        p = root / name
        p.write_bytes(data)
        cases.append(Case(name, "seqfile", p))
    return cases


def label_args(root: Path) -> list[Case]:
    """Bad ``LABEL=FILE`` and labels-CSV combinations (train / doctor data only)."""
    root.mkdir(parents=True, exist_ok=True)
    pos = root / "pos.fa"
    pos.write_bytes(_fasta([(f"p{i}", s) for i, s in enumerate(GOOD_SEQS)]))
    lab = root / "labels.csv"
    lab.write_bytes(b"id,label\np0,a\n")
    junk = root / "labels_junk.csv"
    junk.write_bytes(b"\xff\xfe\x00\x01\x02")
    return [
        Case("missing_class_file", "args", args=["--data", f"a={pos}", "--data", f"b={root / 'nope.fa'}"]),
        Case("empty_class_label", "args", args=["--data", f"={pos}", "--data", f"b={pos}"]),
        Case("mixed_label_files", "args", args=["--data", f"a={pos}", "--data", str(pos)]),
        Case("labels_csv_missing_ids", "args", args=["--data", str(pos), "--labels", str(lab)]),
        Case("labels_csv_binary", "args", args=["--data", str(pos), "--labels", str(junk)]),
        Case("labels_csv_missing", "args", args=["--data", str(pos), "--labels", str(root / "none.csv")]),
        Case("data_is_a_folder", "args", args=["--data", str(root / "empty_dir")]),
    ]


CONFIGS: dict[str, str | bytes] = {
    "bad_syntax.yaml": "data: {path: x.fa\ntrain: [",
    "tab_indent.yaml": "data:\n\tpath: x.fa\n",
    "python_tag.yaml": "data: !!python/object/apply:os.system ['echo owned']\n",
    "python_name.yaml": "data: {path: !!python/name:os.system }\n",
    "list_top.yaml": "- data\n- train\n",
    "scalar_top.yaml": "just a string\n",
    "unknown_section.yaml": "data: {path: DATA}\nmodle: {name: x}\n",
    "unknown_field.yaml": "data: {path: DATA}\ntrain: {learning_rate: 0.1}\n",
    "epochs_text.yaml": "data: {path: DATA}\ntrain: {epochs: ten}\n",
    "epochs_zero.yaml": "data: {path: DATA}\ntrain: {epochs: 0}\n",
    "lr_negative.yaml": "data: {path: DATA}\ntrain: {lr: -1}\n",
    "lr_inf.yaml": "data: {path: DATA}\ntrain: {lr: .inf}\n",
    "lr_nan.yaml": "data: {path: DATA}\ntrain: {lr: .nan}\n",
    "batch_zero.yaml": "data: {path: DATA}\ntrain: {batch_size: 0}\n",
    "seed_huge.yaml": "data: {path: DATA}\ntrain: {seed: 100000000000000000000000000}\n",
    "seed_negative.yaml": "data: {path: DATA}\ntrain: {seed: -3}\n",
    "dropout_two.yaml": "data: {path: DATA}\nmodel: {params: {dropout: 2}}\n",
    "channels_text.yaml": "data: {path: DATA}\nmodel: {params: {channels: abc}}\n",
    "channels_zero.yaml": "data: {path: DATA}\nmodel: {params: {channels: 0}}\n",
    "channels_float.yaml": "data: {path: DATA}\nmodel: {params: {channels: 2.5}}\n",
    "dilations_text.yaml": "data: {path: DATA}\nmodel: {params: {dilations: abc}}\n",
    "unknown_param.yaml": "data: {path: DATA}\nmodel: {params: {colour: red}}\n",
    "unknown_model.yaml": "data: {path: DATA}\nmodel: {name: bert_large}\n",
    "image_model.yaml": "data: {path: DATA}\nmodel: {name: resnet}\n",
    "schedule_bad.yaml": "data: {path: DATA}\ntrain: {schedule: linear}\n",
    "monitor_bad.yaml": "data: {path: DATA}\ntrain: {monitor: val_auc}\n",
    "monitor_train.yaml": "data: {path: DATA}\ntrain: {monitor: train_roc_auc}\n",
    "alphabet_bad.yaml": "data: {path: DATA, alphabet: klingon}\n",
    "max_len_zero.yaml": "data: {path: DATA, max_len: 0}\n",
    "val_frac_big.yaml": "data: {path: DATA, val_frac: 0.9}\n",
    "store_bad.yaml": "data: {path: DATA, store: disk}\n",
    "no_data.yaml": "train: {epochs: 2}\n",
    "empty.yaml": "",
    "comment_only.yaml": "# nothing here\n",
    "alias_bomb.yaml": "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
                       "d: [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n",
    "latin1.yaml": b"data: {path: caf\xe9.fa}\n",
    "utf16.yaml": "data: {path: DATA}\n".encode("utf-16"),
    "binary.yaml": bytes(range(256)),
    "data_missing_file.yaml": "data: {path: /nonexistent/file.fa}\n",
    "focal_alpha_bad.yaml": "data: {path: DATA}\ntrain: {loss: focal, focal_alpha: [0.1, 0.2, 0.3, 0.4]}\n",
    "bce_multiclass_ok_data.yaml": "data: {path: DATA}\ntrain: {loss: hinge}\n",
    "precision_bad.yaml": "data: {path: DATA}\ntrain: {precision: fp8}\n",
    "device_bad.yaml": "data: {path: DATA}\ntrain: {device: tpu}\n",
    "device_cuda_missing.yaml": "data: {path: DATA}\ntrain: {device: 'cuda:7'}\n",
    "optimizer_bad.yaml": "data: {path: DATA}\ntrain: {optimizer: rmsprop}\n",
    "grad_clip_zero.yaml": "data: {path: DATA}\ntrain: {grad_clip: 0}\n",
    "label_smoothing_one.yaml": "data: {path: DATA}\ntrain: {label_smoothing: 1.0}\n",
    "lr_mult_bad.yaml": "data: {path: DATA}\ntrain: {lr_mult: {nothere: 2}}\n",
    "positive_bad.yaml": "data: {path: DATA, positive_class: tumour}\n",
    "weights_for_sequences.yaml": "data: {path: DATA}\nmodel: {weights: /nonexistent.safetensors}\n",
    "pretrained_for_sequences.yaml": "data: {path: DATA}\nmodel: {pretrained: imagenet}\n",
    "gc_input_bad.yaml": "data: {path: DATA, gc_input: true}\n",
    "rc_protein_only_ok.yaml": "data: {path: DATA, augment: {substitution_rate: 0.9}}\n",
    "data_path_list_empty.yaml": "data: {path: []}\n",
    "data_path_number.yaml": "data: {path: 42}\n",
}

SET_VALUES = [
    "train.lr=abc", "train.lr=[1,2]", "train.lr=.inf", "model.params.channels=abc", "model.params.dropout=2",
    "model.params.blocks=-1", "train.seed=99999999999999999999999", "train.epochs=1.5", "nonsense",
    "=3", "train.=3", "data.path.sub=3", "train.lr=!!python/object/apply:os.system [echo]",
    "train.lr={unclosed", ["data.store=mmap", "data.store_dir=/proc/biolens-cannot-write/x"],
    "data.quality.max_unknown_frac=2",
    "train.momentum=1.5", "data.image.max_pixels=0", "train.accumulate=0", "model.head_epochs=-1",
    "train.checkpoint_every=0", "data.val_frac=0", "data.test_frac=0.6", "train.warmup_epochs=-1",
    "model.params=[1,2]", "train=3",
]


def configs(root: Path, data: Path) -> list[Case]:
    root.mkdir(parents=True, exist_ok=True)
    cases = []
    for name, text in CONFIGS.items():
        p = root / name
        p.write_bytes(text.replace("DATA", str(data)).encode() if isinstance(text, str) else text)
        cases.append(Case(name, "config", p))
    for v in SET_VALUES:
        values = v if isinstance(v, list) else [v]
        cases.append(Case(f"set[{' '.join(values)}]", "set", args=[a for x in values for a in ("--set", x)]))
    return cases


def image_inputs(root: Path, good: Callable[[Path], None]) -> list[Case]:
    """Image folders and manifests that train refuses (``good`` writes a valid two-class folder into a path)."""
    root.mkdir(parents=True, exist_ok=True)
    cases = []

    def folder(name: str, bad: dict[str, bytes]) -> None:
        d = root / name
        good(d)
        for rel, data in bad.items():
            (d / rel).parent.mkdir(parents=True, exist_ok=True)
            (d / rel).write_bytes(data)
        cases.append(Case(name, "image_folder", d))

    png = _png()
    folder("bomb_png", {"train/normal/bomb.png": png_bomb()})
    folder("bomb_wide", {"train/normal/wide.png": png_bomb(1_000_000, 50)})
    folder("truncated_png", {"train/normal/trunc.png": png[: len(png) // 2]})
    buf = io.BytesIO()
    Image.fromarray(np.zeros((16, 16, 3), dtype=np.uint8)).save(buf, format="JPEG")
    folder("truncated_jpeg", {"val/pneumonia/trunc.jpg": buf.getvalue()[:40]})
    folder("zero_png", {"train/normal/zero.png": b""})
    folder("text_as_png", {"test/normal/notes.png": b"these are my notes\n"})
    folder("random_jpg", {"train/pneumonia/x.jpg": np.random.default_rng(1).integers(0, 256, 300, dtype=np.uint8).tobytes()})
    folder("dicom_garbage", {"train/normal/scan.dcm": bytes(128) + b"DICM" + b"\x02\x00\x10\x00garbage"})
    folder("dicom_not", {"train/normal/scan.dcm": b"not dicom at all"})
    folder("bmp_corrupt", {"train/normal/x.bmp": b"BM" + bytes(40)})
    folder("tiff_corrupt", {"train/normal/x.tif": b"II*\x00" + bytes(20)})
    folder("webp_corrupt", {"train/normal/x.webp": b"RIFF\x10\x00\x00\x00WEBPVP8 " + bytes(8)})
    folder("gif_corrupt", {"train/normal/x.gif": b"GIF89a" + bytes(6)})
    for name, layout in (("one_class", ["only"]), ("empty_class", None)):
        d = root / name
        if layout:
            for i in range(3):
                (d / "only").mkdir(parents=True, exist_ok=True)
                (d / "only" / f"{i}.png").write_bytes(png)
        else:
            good(d)
            (d / "train" / "extra").mkdir(parents=True, exist_ok=True)
        cases.append(Case(name, "image_folder", d))
    only_text = root / "only_text"
    (only_text / "a").mkdir(parents=True)
    (only_text / "b").mkdir(parents=True)
    (only_text / "a" / "x.txt").write_text("x")
    (only_text / "b" / "y.docx").write_bytes(_zip(b"doc"))
    cases.append(Case("only_text", "image_folder", only_text))
    no_train = root / "no_train"
    good(no_train)
    shutil.rmtree(no_train / "train")
    cases.append(Case("no_train", "image_folder", no_train))
    mismatch = root / "class_mismatch"
    good(mismatch)
    (mismatch / "val" / "pneumonia").rename(mismatch / "val" / "covid")
    cases.append(Case("class_mismatch", "image_folder", mismatch))
    img_dir = root / "manifest_images"
    good(img_dir)
    files = sorted(p.relative_to(img_dir) for p in img_dir.rglob("*.png"))
    rows = [f"{f},{f.parts[1]}" for f in files]
    manifests = {
        "missing_file.csv": "path,label\n" + "\n".join(rows + ["train/normal/ghost.png,normal"]) + "\n",
        "no_path_col.csv": "file,label\n" + "\n".join(rows) + "\n",
        "no_label_col.csv": "path,class\n" + "\n".join(rows) + "\n",
        "empty_label.csv": "path,label\n" + "\n".join(rows[:-1] + [f"{files[-1]},"]) + "\n",
        "bad_split.csv": "path,label,split\n" + "\n".join(f"{r},holdout" for r in rows) + "\n",
        "one_class.csv": "path,label\n" + "\n".join(f"{f},normal" for f in files) + "\n",
        "bomb.csv": "path,label\n" + "\n".join(rows + ["bomb.png,normal"]) + "\n",
        "abs_missing.csv": "path,label\n/nonexistent/x.png,normal\n/nonexistent/y.png,pneumonia\n",
    }
    (img_dir / "bomb.png").write_bytes(png_bomb())
    for name, text in manifests.items():
        p = img_dir / name
        p.write_text(text)
        cases.append(Case(f"manifest_{name}", "manifest", p))
    return cases


def run_folders(root: Path, run: Path) -> list[Case]:
    """Damaged copies of a trained run: every load path must refuse them with one line."""
    from biolens.bundle import refresh_manifest

    root.mkdir(parents=True, exist_ok=True)
    cases = [Case("run_missing", "run", root / "does_not_exist")]
    empty = root / "run_empty"
    empty.mkdir()
    cases.append(Case("run_empty", "run", empty))

    def copy(name: str) -> Path:
        d = root / name
        shutil.copytree(run, d)
        return d

    def contract_edit(name: str, **changes: object) -> None:
        d = copy(name)
        c = json.loads((d / "contract.json").read_text())
        c.update(changes)
        (d / "contract.json").write_text(json.dumps(c))
        refresh_manifest(d)  # re-hashed: only the contract's own validation can catch it
        cases.append(Case(name, "run", d))

    contract_edit("contract_positive_unknown", positive_class="nope")
    contract_edit("contract_temperature_zero", temperature=0)
    contract_edit("contract_temperature_negative", temperature=-1.5)
    contract_edit("contract_max_len_negative", max_len=-5)
    contract_edit("contract_threshold_two", threshold=2.0)
    contract_edit("contract_classes_empty", class_names=[])
    contract_edit("contract_classes_dup", class_names=["a", "a"])
    contract_edit("contract_alphabet_bad", alphabet="klingon")
    contract_edit("contract_unknown_field", colour="red")
    for name, fn in (
        ("contract_not_json", lambda d: (d / "contract.json").write_text("{not json")),
        ("contract_list", lambda d: (d / "contract.json").write_text("[1, 2]")),
        ("config_garbage", lambda d: (d / "config.yaml").write_text("model: [unclosed")),
        ("config_bad_model", lambda d: (d / "config.yaml").write_text(
            (d / "config.yaml").read_text().replace("name: dilated_resnet", "name: nothing_like_it"))),
        ("config_bad_params", lambda d: (d / "config.yaml").write_text(
            (d / "config.yaml").read_text().replace("channels: 16", "channels: -4"))),
        ("weights_truncated", lambda d: (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:100])),
        ("weights_pickle", lambda d: (d / "model.safetensors").write_bytes(b"\x80\x04\x95" + bytes(64))),
        ("weights_nan", _nan_weights),
    ):
        d = copy(name)
        fn(d)
        refresh_manifest(d)
        cases.append(Case(name, "run", d))
    for name, fn in (
        ("manifest_missing", lambda d: (d / "manifest.json").unlink()),
        ("manifest_not_json", lambda d: (d / "manifest.json").write_text("nope")),
        ("manifest_traversal", _traversal),
        ("weights_deleted", lambda d: (d / "model.safetensors").unlink()),
        ("weights_changed", lambda d: (d / "model.safetensors").write_bytes(
            (d / "model.safetensors").read_bytes()[:-4] + b"\x00\x00\x80\x7f")),
        ("contract_changed", lambda d: (d / "contract.json").write_text((d / "contract.json").read_text() + " ")),
    ):
        d = copy(name)
        fn(d)
        cases.append(Case(name, "run", d))
    return cases


def _nan_weights(d: Path) -> None:
    from safetensors.numpy import load_file, save_file

    tensors = load_file(str(d / "model.safetensors"))
    first = next(k for k, v in tensors.items() if v.dtype.kind == "f" and v.size)
    tensors[first] = np.full_like(tensors[first], np.nan)
    save_file(tensors, str(d / "model.safetensors"))


def _traversal(d: Path) -> None:
    m = json.loads((d / "manifest.json").read_text())
    m["files"]["../../etc/passwd"] = "0" * 64
    (d / "manifest.json").write_text(json.dumps(m))


def http_bodies() -> list[Case]:
    """Abusive request bodies for ``POST /v1/predict`` of a sequence model: each must be a JSON 4xx."""
    deep = b"[" * 100_000 + b"]" * 100_000
    cases = [Case(f"json_{name}", "http_json", body=body) for name, body in {
        "empty": b"", "not_json": b"{nope", "truncated": b'{"sequences": ["ACGT"', "null": b"null", "number": b"3",
        "string": b'"ACGT"', "list": b'["ACGT"]', "deep_100k": deep, "deep_5k": b"[" * 5000 + b"]" * 5000,
        "deep_dict": b'{"a":' * 3000 + b"1" + b"}" * 3000, "no_field": b"{}", "unknown_field": b'{"seqs": ["ACGT"]}',
        "sequences_null": b'{"sequences": null}', "sequences_dict": b'{"sequences": {"a": 1}}',
        "sequences_empty": b'{"sequences": []}', "sequences_numbers": b'{"sequences": [1, 2]}',
        "sequences_nested": b'{"sequences": [["ACGT"]]}', "sequence_empty": b'{"sequences": [""]}',
        "sequence_bad_char": b'{"sequences": ["ACGT*"]}', "sequence_unicode": '{"sequences": ["ACGTé"]}'.encode(),
        "sequence_too_long": json.dumps({"sequences": ["A" * 100_000]}).encode(),
        "too_many": json.dumps({"sequences": ["ACGT"] * 5000}).encode(),
        "ids_mismatch": b'{"sequences": ["ACGT"], "ids": ["a", "b"]}', "ids_numbers": b'{"sequences": ["ACGT"], "ids": [1]}',
        "latin1": b'{"sequences": ["ACGT\xe9"]}', "utf16": '{"sequences": ["ACGT"]}'.encode("utf-16"),
        "nul": b'{"sequences": ["AC\x00GT"]}', "huge_number": b'{"sequences": ["ACGT"], "ids": [1e999999]}',
        "binary": bytes(range(256)) * 10,
        "bom_utf8_ok_but_junk": b"\xef\xbb\xbf{nope", "trailing_garbage": b'{"sequences": ["ACGT"]} xyz',
        "duplicate_keys_bad": b'{"sequences": ["ACGT"], "sequences": [3]}', "sequences_bool": b'{"sequences": [true]}',
        "sequences_string": b'{"sequences": "ACGT"}', "ids_null_items": b'{"sequences": ["ACGT"], "ids": [null]}',
        "ids_dict": b'{"sequences": ["ACGT"], "ids": {"a": 1}}', "extra_field": b'{"sequences": ["ACGT"], "mode": 1}',
        "nan_literal": b'{"sequences": [NaN]}', "infinity": b'{"sequences": [Infinity]}',
        "control_chars": b'{"sequences": ["AC\x01GT"]}', "escaped_nul": b'{"sequences": ["AC\\u0000GT"]}',
        "spaces_inside": b'{"sequences": ["AC GT"]}', "lowercase_u": b'{"sequences": ["acgu"]}',
        "protein": b'{"sequences": ["MKLVWHHQRSTEE"]}', "emoji": '{"sequences": ["AC😀GT"]}'.encode(),
        "huge_id": json.dumps({"sequences": ["ACGT"], "ids": ["x" * 1000, "y"]}).encode(),
        "many_empty": json.dumps({"sequences": [""] * 10}).encode(),
        "mixed_types": b'{"sequences": ["ACGT", 5, null, {}]}', "array_of_arrays": b'{"sequences": [[], []]}',
    }.items()]
    cases.append(Case("files_to_sequence_model", "http_files", files=[("x.png", _png())]))
    return cases


def _dicom_without_pixels() -> bytes:
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = SecondaryCaptureImageStorage, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("x.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.Rows, ds.Columns, ds.SamplesPerPixel = 64, 64, 1
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def http_image_bodies() -> list[Case]:
    """Abusive multipart uploads for an image model."""
    png = _png()
    dicom_garbage = bytes(128) + b"DICM" + b"junk" * 10
    return [Case(f"upload_{name}", "http_files", files=files) for name, files in {
        "bomb": [("bomb.png", png_bomb())], "bomb_wide": [("wide.png", png_bomb(2_000_000, 40))],
        "truncated": [("t.png", png[:30])], "text": [("notes.png", b"hello")], "empty": [("e.png", b"")],
        "dicom_garbage": [("s.dcm", dicom_garbage)], "pdf": [("x.pdf", b"%PDF-1.4\n" + bytes(40))],
        "one_bad_of_three": [("a.png", png), ("b.png", png[:20]), ("c.png", png)],
        "zip": [("x.zip", _zip(png))], "many": [(f"{i}.png", png) for i in range(200)],
        "gif_bomb": [("g.gif", b"GIF89a" + struct.pack("<HH", 60000, 60000) + bytes(20))],
        "tiff_junk": [("t.tif", b"II*\x00" + bytes(30))], "bmp_junk": [("b.bmp", b"BM" + bytes(60))],
        "dicom_no_pixels": [("d.dcm", _dicom_without_pixels())], "svg": [("x.svg", b"<svg xmlns='...'/>")],
        "html": [("x.png", b"<html><body>not an image</body></html>")], "random": [("r.jpg", bytes(range(256)) * 4)],
        "webp_junk": [("w.webp", b"RIFF\x10\x00\x00\x00WEBPVP8 " + bytes(8))],
    }.items()] + [Case("json_to_image_model", "http_json", body=b'{"sequences": ["ACGT"]}')]
