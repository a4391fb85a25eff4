"""The memory-mapped sequence store: round trip, cache, equality with the in-memory path, bounded memory."""

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from biolens.config import DataConfig
from biolens.data.alphabets import DNA
from biolens.data.dataset import SequenceBatches, SequenceData
from biolens.data.encoding import encode
from biolens.data.prepare import prepare_sequences, resolve_store
from biolens.data.splits import sequence_keys
from biolens.data.rows import RowReader
from biolens.data.store import Source, open_or_build
from biolens.data.synthetic import write_random_fasta
from biolens.errors import DataError
from tests.conftest import planted_dna, write_fasta


def _data(n=240, seed=0):
    seqs, labels = planted_dna(n, 40, seed=seed, vary=True)
    seqs[3] = seqs[3][:10] + "NRYN" + seqs[3][14:]  # unknown and ambiguity codes
    seqs[5] = seqs[7]  # exact duplicate
    seqs[9] = seqs[11][::-1].translate(str.maketrans("ACGT", "TGCA"))  # reverse complement of another
    return seqs, labels


def test_round_trip_equals_in_memory_encode_and_cache_is_reused(tmp_path):
    seqs, labels = _data()
    fa = write_fasta(tmp_path / "d.fa", seqs, labels)
    store = open_or_build([Source(fa)], cache_dir=tmp_path / "cache")
    x, lengths = encode(seqs, DNA, max(map(len, seqs)))
    assert isinstance(store.x, np.memmap) and not store.from_cache
    assert store.x.shape == x.shape and np.array_equal(store.x, x)
    assert np.array_equal(store.lengths, lengths) and np.array_equal(store.raw_lengths, [len(s) for s in seqs])
    assert list(store.ids) == [f"s{i + 1}" for i in range(len(seqs))]
    assert store.label_names == ["background", "promoter"]
    assert [store.label_names[k] for k in store.labels] == labels
    assert store.splits is None and store.alphabet is DNA
    # hashes group rows exactly as the byte-exact keys of the in-memory path do
    exact, canonical = sequence_keys(x, lengths, DNA)
    for mine, ref in ((store.exact, exact), (store.canonical, canonical)):
        assert np.array_equal(mine[:, None] == mine[None, :], ref[:, None] == ref[None, :])
    assert store.exact[5] == store.exact[7] and store.canonical[9] == store.canonical[11] and store.exact[9] != store.exact[11]
    again = open_or_build([Source(fa)], cache_dir=tmp_path / "cache")
    assert again.from_cache and np.array_equal(again.x, x) and again.path == store.path
    assert sorted(p.suffix for p in (tmp_path / "cache").iterdir()) == [".json", ".npz", ".u8"]  # no temp files
    trunc = open_or_build([Source(fa)], max_len=20, cache_dir=tmp_path / "cache")  # another key
    assert trunc.path != store.path and np.array_equal(trunc.x, encode(seqs, DNA, 20)[0])
    time.sleep(0.01)
    write_fasta(fa, seqs[:-2], labels[:-2])  # an edited file is a new entry
    assert len(open_or_build([Source(fa)], cache_dir=tmp_path / "cache")) == len(seqs) - 2


def test_row_reader_reads_sorted_and_unsorted_rows_and_column_prefixes(tmp_path):
    seqs, labels = _data()
    store = open_or_build([Source(write_fasta(tmp_path / "d.fa", seqs, labels))], cache_dir=tmp_path / "c")
    x = np.asarray(store.x).copy()
    reader = RowReader(store.x)
    assert reader.fd is not None  # positional reads, not page faults through the mapping
    for rows in (np.array([0, 1, 2, 7, 8, 50, 239]), np.array([200, 3, 3, 17]), np.arange(240)):
        for width in (None, 12, x.shape[1]):
            want = x[rows] if width is None else x[rows, :width]
            assert np.array_equal(reader.take(rows, width), want)
    with pytest.raises(IndexError, match="out of range"):
        reader.take(np.array([240]))


def test_row_reader_completes_short_reads_and_reports_truncation(tmp_path, monkeypatch):
    seqs, labels = _data()
    store = open_or_build([Source(write_fasta(tmp_path / "d.fa", seqs, labels))], cache_dir=tmp_path / "c")
    x = np.asarray(store.x).copy()
    real = os.preadv
    monkeypatch.setattr(os, "preadv", lambda fd, bufs, off: real(fd, [bufs[0][:7]], off))  # 7 bytes per call
    reader = RowReader(store.x)
    assert np.array_equal(reader.take(np.arange(240)), x) and np.array_equal(reader.take(np.array([3, 9]), 5), x[[3, 9], :5])
    monkeypatch.setattr(os, "preadv", lambda fd, bufs, off: 0)  # end of file: the store was cut short
    with pytest.raises(DataError, match=r"\.u8: sequence store is truncated \(row 0\); delete it to rebuild"):
        reader.take(np.array([0]))


def test_damaged_cache_entry_is_rebuilt_not_reused(tmp_path, caplog):
    seqs, labels = _data()
    fa = write_fasta(tmp_path / "d.fa", seqs, labels)
    store = open_or_build([Source(fa)], cache_dir=tmp_path / "c")
    want = np.asarray(store.x).copy()
    data, meta, arrays = (store.path.with_suffix(ext) for ext in (".u8", ".json", ".npz"))
    for damage in (lambda: data.write_bytes(data.read_bytes()[:-40]),  # cut short
                   lambda: meta.write_text("{"),  # half-written meta
                   lambda: arrays.write_bytes(b"PK\x03\x04 not a zip")):
        del store
        damage()
        with caplog.at_level("WARNING", logger="biolens"):
            store = open_or_build([Source(fa)], cache_dir=tmp_path / "c")
        assert not store.from_cache and np.array_equal(store.x, want) and "rebuilding it" in caplog.text
        assert open_or_build([Source(fa)], cache_dir=tmp_path / "c").from_cache
        caplog.clear()


def test_errors_name_file_and_line(tmp_path):
    seqs, labels = _data(40)
    bad = list(seqs)
    bad[7] = bad[7][:5] + "Z" + bad[7][6:]
    fa = write_fasta(tmp_path / "bad.fa", bad, labels)
    with pytest.raises(DataError, match=r"bad\.fa:15: invalid character 'Z' at position 6"):
        open_or_build([Source(fa)], alphabet="dna", cache_dir=tmp_path / "c")
    fa.write_text(fa.read_text().replace(">s4 label=background", ">s4"))
    with pytest.raises(DataError, match=r"bad\.fa:7: header '>s4' has no label"):
        open_or_build([Source(fa)], cache_dir=tmp_path / "c", max_len=50)
    mixed = write_fasta(tmp_path / "mixed.fa", seqs[:20] + ["MKLVWHHQRSTEE" * 3] * 20, labels)
    import biolens.data.store as store_mod

    old = store_mod.CHUNK_BYTES
    store_mod.CHUNK_BYTES = 40 * 20  # 20 records per chunk
    try:
        with pytest.raises(DataError, match=r"mixed\.fa:41: mixed alphabets: records from here on look like protein"):
            open_or_build([Source(mixed)], cache_dir=tmp_path / "c", max_len=40)
    finally:
        store_mod.CHUNK_BYTES = old
    assert not [p for p in (tmp_path / "c").iterdir() if p.name.startswith(".")]  # no temp files left behind


def _cfg(path, tmp_path, store, **kw):
    return DataConfig(path=str(path), store=store, store_dir=str(tmp_path / "cache"), **kw)


def _csv_with_splits(tmp_path, n=300):
    seqs, labels = _data(n)
    seqs[20] = "A" * 40  # fails the homopolymer filter
    seqs[21] = "ACGT" * 2  # fails min_len below
    split = ["train"] * (n * 7 // 10) + ["val"] * (n * 15 // 100)
    split += ["test"] * (n - len(split))
    seqs[-1] = seqs[0]  # test duplicates a training sequence: leakage
    rows = ["id,sequence,label,split"] + [f"r{i},{s},{lab},{sp}" for i, (s, lab, sp) in enumerate(zip(seqs, labels, split))]
    p = tmp_path / "d.csv"
    p.write_text("\n".join(rows) + "\n")
    return p


@pytest.mark.parametrize("dedup", [False, True])
def test_prepare_mmap_equals_memory_with_a_split_column(tmp_path, dedup):
    p = _csv_with_splits(tmp_path)
    kw = dict(dedup=dedup, quality={"min_len": 10})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mem = prepare_sequences(_cfg(p, tmp_path, "memory", **kw), seed=3)
        mm = prepare_sequences(_cfg(p, tmp_path, "mmap", **kw), seed=3)
    assert mm.report.pop("store")["mode"] == "mmap"
    assert mm.report == mem.report and mm.filtered == mem.filtered and len(mm.filtered) == 3
    assert mem.report["leakage"]["test_in_train_or_val"]["exact"] == 1
    assert mm.config.model_copy(update={"store": "memory"}) == mem.config and mm.max_len == mem.max_len
    for s in ("train", "val", "test"):
        a, b = mem.splits[s], mm.splits[s]
        assert b.mapped and not a.mapped and len(a) == len(b)
        assert list(a.ids) == list(b.ids) and np.array_equal(a.y, b.y) and np.array_equal(a.lengths, b.lengths)
        assert np.array_equal(b.take(np.arange(len(b))), a.x)
        assert np.array_equal(np.concatenate(list(b.blocks(size=7))), a.x)


def test_prepare_mmap_random_split_keeps_duplicates_together(tmp_path):
    seqs, labels = _data(300)
    fa = write_fasta(tmp_path / "d.fa", seqs, labels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mm = prepare_sequences(_cfg(fa, tmp_path, "mmap"), seed=0)
        mem = prepare_sequences(_cfg(fa, tmp_path, "memory"), seed=0)
    where = {i: s for s in ("train", "val", "test") for i in mm.splits[s].ids}
    assert len(where) == 300 - mm.report["quality"]["dropped"]
    assert where["s6"] == where["s8"] and where["s10"] == where["s12"]  # exact and reverse-complement duplicates
    for rep in (mm.report, mem.report):
        leak = rep["leakage"]
        assert leak["val_in_train"] == leak["test_in_train_or_val"] == {"exact": 0, "reverse_complement": 0}
        assert sum(leak["within_split_duplicates"].values()) == 1  # s6 = s8, in one split
    for s in ("train", "val", "test"):  # stratified
        assert abs(mm.splits[s].y.mean() - 0.5) < 0.1


def test_store_auto_picks_memory_for_small_data_and_mmap_when_memory_is_short(tmp_path, monkeypatch, caplog):
    p = _csv_with_splits(tmp_path)
    assert resolve_store(_cfg(p, tmp_path, "auto")) == "memory"
    monkeypatch.setattr("biolens.data.prepare.available_memory", lambda: 1000)
    with caplog.at_level("INFO", logger="biolens"):
        assert resolve_store(_cfg(p, tmp_path, "auto")) == "mmap"
    assert "streaming it into a memory-mapped store" in caplog.text
    assert resolve_store(_cfg(p, tmp_path, "memory")) == "memory"
    assert resolve_store(DataConfig(path="builtin:ecoli_promoters", store="auto")) == "memory"


def _batches(data, **kw):
    b = SequenceBatches(data, 32, shuffle=True, seed=5, **kw)
    out = []
    for epoch in range(2):
        b.set_epoch(epoch)
        out += [{k: v.clone() for k, v in batch.items()} for batch in b]
    return b, out


@pytest.mark.parametrize("device", ["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
@pytest.mark.parametrize("aug", [{}, {"reverse_complement": True, "substitution_rate": 0.05, "shift": 3}])
def test_mmap_batches_equal_in_memory_batches(tmp_path, aug, device):
    seqs, labels = _data()
    store = open_or_build([Source(write_fasta(tmp_path / "d.fa", seqs, labels))], cache_dir=tmp_path / "c")
    rows = np.flatnonzero(np.arange(len(store)) % 3 != 1)  # a split: every row but each third
    y = store.labels[rows]
    mem = SequenceData(store.ids[rows], np.asarray(store.x)[rows].copy(), store.lengths[rows], y, DNA)
    mm = SequenceData(store.ids[rows], store.x, store.lengths[rows], y, DNA, rows=rows)
    b_mem, ref = _batches(mem, with_gc=True, device=device, **aug)
    b_mm, got = _batches(mm, with_gc=True, device=device, **aug)
    assert b_mem.resident and not b_mm.resident and b_mm.pin == (device == "cuda")
    assert len(ref) == len(got) == 2 * len(b_mem)
    for r, g in zip(ref, got):
        assert r.keys() == g.keys()
        for k in r:
            assert torch.equal(r[k], g[k]), k
    # a streamed split of in-RAM data (resident=False) gives the same batches too
    _, ram_streamed = _batches(mem, with_gc=True, resident=False, device=device, **aug)
    assert all(torch.equal(r["x"], g["x"]) for r, g in zip(ref, ram_streamed))


def test_streamed_read_ahead_thread_ends_with_iteration_and_passes_errors_on(tmp_path):
    seqs, labels = _data()
    store = open_or_build([Source(write_fasta(tmp_path / "d.fa", seqs, labels))], cache_dir=tmp_path / "c")
    mm = SequenceData(store.ids, store.x, store.lengths, store.labels, DNA, rows=np.arange(len(store)))
    b = SequenceBatches(mm, 16)
    threads = lambda: [t for t in threading.enumerate() if t.name.startswith("biolens-rows")]  # noqa: E731
    it = iter(b)
    next(it)
    assert threads()  # the next batch is being read ahead
    it.close()  # the caller stops early
    assert not threads()
    assert len(list(b)) == len(b) and not threads()
    real, calls = b.reader.take, []

    def failing(rows, width=None, out=None):
        calls.append(len(rows))
        if len(calls) == 3:  # in the read-ahead thread
            raise DataError("d.u8: sequence store is truncated (row 40); delete it to rebuild")
        return real(rows, width, out=out)

    b.reader.take = failing
    got = []
    with pytest.raises(DataError, match="truncated"):
        for batch in b:
            got.append(batch)
    assert len(got) == 2 and not threads()


@pytest.mark.slow
def test_training_on_mmap_store_equals_memory_with_a_split_column(tmp_path):
    import biolens

    p = _csv_with_splits(tmp_path, 200)
    results = {}
    for store in ("memory", "mmap"):
        cfg = {"data": {"path": str(p), "store": store, "store_dir": str(tmp_path / "cache"), "quality": {"min_len": 10}},
               "model": {"name": "motif_cnn", "params": {"embedding_dim": 4, "filters": 8, "kernel_sizes": [5]}},
               "train": {"epochs": 2, "batch_size": 32, "seed": 1}, "out": str(tmp_path / store)}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results[store] = biolens.train(cfg)
    mem, mm = results["memory"], results["mmap"]
    strip = lambda h: [{k: v for k, v in e.items() if k != "time_s"} for e in h]  # noqa: E731
    assert strip(mm.history) == strip(mem.history) and mm.metrics == mem.metrics
    fp = [json.loads((r.run_dir / "manifest.json").read_text())["dataset_fingerprint"] for r in (mem, mm)]
    assert fp[0] == fp[1]
    assert (mm.run_dir / "predictions.csv").read_text() == (mem.run_dir / "predictions.csv").read_text()


# --- memory: training streams through a file far larger than what it adds to the resident set -----------------

RECORDS, LENGTH, KEPT = 300_000, 1000, 0.03  # a 305 MB FASTA; 3% of the records pass the quality filter


def _big_fasta(path: Path) -> int:
    """RECORDS random DNA records of LENGTH bases; all but a KEPT share are 1 base short of quality.min_len."""
    return write_random_fasta(path, RECORDS, LENGTH, short_fraction=1 - KEPT).stat().st_size


_PEAK = textwrap.dedent("""
    import resource, subprocess, sys
    rc = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
    print(peak, rc.returncode, rc.stdout[-3000:])
""")

_EPOCH = textwrap.dedent("""
    import sys, torch
    from biolens.config import load_config
    from biolens.tasks import make_task
    cfg = load_config(None, {"data": {"path": sys.argv[1], "store": "mmap", "store_dir": sys.argv[2]},
                             "train": {"batch_size": 256}})
    task = make_task(cfg)
    task.prepare()
    n = 0
    for split in ("train", "val", "test"):
        for batch in task.batches(split, train=split == "train", device=torch.device("cpu")):
            n += int((batch["x"] > 0).sum())
    print("bases", n, "fingerprint", task.fingerprint())
""")


def _peak_rss_mb(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Peak RSS (MB) of ``python ARGS`` run in a fresh process (its own RUSAGE_CHILDREN), and its output."""
    cmd = [sys.executable, "-c", _PEAK, sys.executable, *args]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900).stdout.split(" ", 2)
    assert out[1] == "0", out[2]
    return int(out[0]), out[2]


@pytest.mark.slow
def test_training_streams_a_large_file_with_bounded_memory(tmp_path):
    big = tmp_path / "big.fa"
    size_mb = _big_fasta(big) / 2**20
    small = write_fasta(tmp_path / "small.fa", *planted_dna(400, LENGTH))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2] / "src"), os.environ.get("PYTHONPATH", "")])}
    cache = tmp_path / "cache"
    common = ["--epochs", "1", "--batch-size", "256", "--model", "motif_cnn", "--set", "model.params.embedding_dim=4",
              "--set", "model.params.filters=4", "--set", "model.params.kernel_sizes=[3]", "--set", "data.store=mmap",
              "--set", f"data.store_dir={cache}", "--set", f"data.quality.min_len={LENGTH}", "-q"]
    train = ["-c", "from biolens.cli.main import run; run()", "train"]
    base, _ = _peak_rss_mb([*train, "--data", str(small), "--out", str(tmp_path / "small"), *common], env)
    # 1) biolens train: streams the file into the store, filters, splits and trains on the records kept
    peak, _ = _peak_rss_mb([*train, "--data", str(big), "--out", str(tmp_path / "big"), *common], env)
    report = json.loads((tmp_path / "big" / "data_report.json").read_text())
    assert report["store"]["rows"] == RECORDS and report["store"]["width"] == LENGTH
    kept = report["quality"]["kept"]
    assert abs(kept / RECORDS - KEPT) < 0.005 and report["quality"]["too_short"] == RECORDS - kept
    # 2) every record through the training data path: all rows of every split, batch by batch, and the fingerprint
    full, out = _peak_rss_mb(["-c", _EPOCH, str(big), str(cache)], env)
    assert f"bases {RECORDS * LENGTH - (RECORDS - kept)} " in out
    print(f"file {size_mb:.0f} MB, store {RECORDS * LENGTH / 2**20:.0f} MB; peak RSS: train {peak} MB, all rows "
          f"{full} MB, train on a 400-record file {base} MB")
    assert size_mb > 280 and peak - base < 120 and full - base < 120, (size_mb, base, peak, full)
