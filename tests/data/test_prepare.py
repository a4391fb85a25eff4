import numpy as np
import pytest

from biolens.config import DataConfig, RunConfig
from biolens.contract import InputContract
from biolens.data.builtin import BUILTINS
from biolens.data.prepare import encode_for_model, prepare_sequences
from biolens.data.readers import Records
from biolens.errors import BiolensWarning, ConfigError, DataError
from biolens.tasks import make_task
from biolens.tasks.sequence import SequenceCodec
from tests.conftest import planted_dna, write_csv, write_fasta


def test_builtin_splice_fixed_split_no_leakage():
    p = prepare_sequences(DataConfig(path="builtin:splice"))
    assert p.class_names == ["EI", "IE", "N"] and p.alphabet.name == "dna" and p.max_len == 60
    assert {s: len(d) for s, d in p.splits.items()} == {"train": 2548, "val": 324, "test": 317}
    assert p.report["quality"]["too_many_unknown"] == 1 and len(p.filtered) == 1
    assert p.report["leakage"]["val_in_train"] == {"exact": 0, "reverse_complement": 0}
    assert p.config.augment.reverse_complement is False  # strand-specific data set


@pytest.mark.parametrize("name", sorted(n for n, d in BUILTINS.items() if d.task == "sequence"))
def test_every_builtin_loads(name):
    p = prepare_sequences(DataConfig(path=f"builtin:{name}"))
    assert sum(len(d) for d in p.splits.values()) + p.report["quality"]["dropped"] == BUILTINS[name].n
    assert tuple(p.class_names) == BUILTINS[name].classes


def test_user_file_gets_seeded_stratified_split_and_rc_default(tmp_path):
    seqs, labels = planted_dna(n=200)
    path = write_csv(tmp_path / "d.csv", seqs, labels)
    a = prepare_sequences(DataConfig(path=str(path)), seed=5)
    b = prepare_sequences(DataConfig(path=str(path)), seed=5)
    np.testing.assert_array_equal(a.splits["test"].ids, b.splits["test"].ids)
    assert len(a.splits["test"]) == 20 and len(a.splits["val"]) == 20
    assert a.config.augment.reverse_complement is True
    assert a.positive_class == "promoter"


def test_explicit_val_and_test_and_leakage_dedup(tmp_path):
    seqs, labels = planted_dna(n=100)
    train = write_csv(tmp_path / "train.csv", seqs, labels)
    val = write_csv(tmp_path / "val.csv", seqs[:10], labels[:10])  # all leaked
    test = write_csv(tmp_path / "test.csv", seqs[90:] + planted_dna(n=10, seed=9)[0], labels[90:] + planted_dna(n=10, seed=9)[1])
    with pytest.warns(BiolensWarning, match="also occur"):
        p = prepare_sequences(DataConfig(path=str(train), val=str(val), test=str(test)))
    assert p.report["leakage"]["val_in_train"]["exact"] == 10
    assert p.report["leakage"]["test_in_train_or_val"]["exact"] == 10
    with pytest.raises(DataError, match="the val split is empty"):
        prepare_sequences(DataConfig(path=str(train), val=str(val), test=str(test), dedup=True))


def test_one_class_only(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["ACGT", "GGCC"], ["a", "a"])
    with pytest.raises(DataError, match=r"only one class \('a'\)"):
        prepare_sequences(DataConfig(path=str(path)))


def test_invalid_character_names_file_and_line(tmp_path):
    seqs, labels = planted_dna(n=30)
    seqs[7] = seqs[7][:5] + "J" + seqs[7][6:]
    path = write_fasta(tmp_path / "d.fa", seqs, labels)
    with pytest.raises(DataError, match=r"d\.fa:15: invalid character 'J' at position 6 for alphabet dna"):
        prepare_sequences(DataConfig(path=str(path), alphabet="dna"))
    seqs[7] = seqs[7].replace("J", "-")
    path = write_fasta(tmp_path / "d.fa", seqs, labels)
    with pytest.raises(DataError, match=r"d\.fa:15: invalid character '-': it is in no sequence alphabet"):
        prepare_sequences(DataConfig(path=str(path)))


def test_mixed_alphabets_names_record(tmp_path):
    seqs, labels = planted_dna(n=30)
    seqs[3] = seqs[3].replace("T", "U")
    path = write_csv(tmp_path / "d.csv", seqs, labels)
    with pytest.raises(DataError, match=r"d\.csv:5: mixed alphabets"):
        prepare_sequences(DataConfig(path=str(path)))


def test_protein_with_rc_is_config_error(tmp_path):
    seqs = ["MKVLAAGIWEEPQ", "PEPTIDEKLMNQ", "WYVTSRQPNMLK"] * 10
    labels = ["amp", "non", "amp"] * 10
    path = write_csv(tmp_path / "p.csv", [s + str(i % 7 * "A") for i, s in enumerate(seqs)], labels)
    cfg = DataConfig(path=str(path))
    assert prepare_sequences(cfg).alphabet.name == "protein"
    with pytest.raises(ConfigError, match="reverse_complement is on but the alphabet is protein"):
        prepare_sequences(cfg.model_copy(update={"augment": cfg.augment.model_copy(update={"reverse_complement": True})}))


def test_truncation_reported(tmp_path):
    seqs, labels = planted_dna(n=60, vary=True)
    path = write_csv(tmp_path / "d.csv", seqs, labels)
    p = prepare_sequences(DataConfig(path=str(path), max_len=35))
    assert p.max_len == 35 and p.splits["train"].x.shape[1] == 35
    assert sum(v["truncated"] for v in p.report["lengths"].values()) == sum(len(s) > 35 for s in seqs)


def test_label_only_in_val(tmp_path):
    seqs, labels = planted_dna(n=40)
    train = write_csv(tmp_path / "t.csv", seqs, labels)
    val = write_csv(tmp_path / "v.csv", seqs[:3], ["weird"] * 3)
    with pytest.raises(DataError, match=r"v\.csv:2: label 'weird' appears in val but never in train"):
        prepare_sequences(DataConfig(path=str(train), val=str(val)))


def test_data_split_seed_fixes_the_split_whatever_the_training_seed(tmp_path):
    """``data.split_seed`` seeds the split (default: ``train.seed``), so a run can change its training seed (cv's
    folds do) and keep its data."""
    seqs, labels = planted_dna(n=200)
    path = str(write_csv(tmp_path / "d.csv", seqs, labels))

    def test_ids(**cfg):
        task = make_task(RunConfig.model_validate({"data": {"path": path, **cfg.get("data", {})},
                                                   "train": cfg.get("train", {})}))
        task.prepare()
        return set(task.ids("test"))

    base = test_ids(train={"seed": 0})
    assert test_ids(train={"seed": 7}) != base  # by default the training seed moves the split
    assert test_ids(train={"seed": 7}, data={"split_seed": 0}) == base
    assert test_ids(data={"split_seed": 7}) == test_ids(train={"seed": 7})


def test_a_protein_model_warns_when_its_inputs_look_like_nucleotides(caplog):
    rng = np.random.default_rng(0)
    dna = ["".join(rng.choice(list("ACGT"), 30)) for _ in range(9)] + ["ACGTUACGUNACGTACGTAC"]  # RNA and N too
    peptides = ["".join(rng.choice(list("ACDEFGHIKLMNPQRSTVWY"), 30)) for _ in range(10)]

    def run(seqs, alphabet="protein"):
        caplog.clear()
        recs = Records([f"s{i}" for i in range(len(seqs))], seqs, None, sources=[f"in.fa:{2 * i + 1}" for i in
                                                                                 range(len(seqs))])
        x, _ = encode_for_model(recs, alphabet, 40)
        assert x.shape == (len(seqs), 40)
        return [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]

    with caplog.at_level("WARNING", logger="biolens.data.prepare"):
        got = run(dna)
        assert len(got) == 1 and got[0].startswith("10 of 10 input sequences (first: in.fa:1) hold only A, C, G")
        assert "this model reads protein" in got[0]
        assert run(peptides) == []
        assert run(dna[:8] + peptides[:2]) == []  # 8 of 10 (< 90%): a mixed file is not called nucleotides
        assert run(["ACGTACGT", "GATTACA"]) == []  # under 20 residues: real peptides look like this too
        assert run(dna[:9], alphabet="dna") == []  # a DNA model reading DNA
        # the server's JSON path: the same warning, naming the field, for the response
        codec = SequenceCodec(InputContract(task="sequence", class_names=["a", "b"], alphabet="protein", max_len=40))
        notes = codec.input_warnings(codec.from_json(dna[:3], None), "sequences")
        assert len(notes) == 1 and notes[0].startswith("3 of 3 input sequences (first: sequences[0]) hold only")
        assert codec.input_warnings(codec.from_json(peptides[:3], None), "sequences") == []
