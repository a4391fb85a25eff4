"""``train.preset=auto`` (doctor/advise.py): the choices written into the config, each with its reason."""

from __future__ import annotations

import numpy as np

from biolens.config import RunConfig
from biolens.doctor.advise import (
    LABEL_SET_REPEATS,
    MANY_LABEL_CHANNELS,
    MANY_LABELS,
    SHORT_NUCLEIC_PARAMS,
    SHORT_REGRESSION_PARAMS,
    SHORT_STEM,
    advise,
    preset_after_data,
)
from biolens.models.label_sets import MAX_LABEL_SETS


def _net(params: dict) -> dict:
    """The network's params, without the neighbour-transfer request (its own test below)."""
    return {k: v for k, v in params.items() if k != "neighbors"}


def _cfg(**model: object) -> RunConfig:
    return RunConfig(data={"path": "x.csv"}, model=model)


def _after(cfg: RunConfig, alphabet: str, median: float, target: str = "classification"
           ) -> tuple[RunConfig, list[str]]:
    return preset_after_data(cfg, "sequence", 2000, np.array([1000, 1000]), "cpu", target, alphabet=alphabet,
                             median_length=median)


def test_short_dna_and_rna_get_a_narrow_stem_and_more_dropout_with_the_reason():
    for alphabet in ("rna", "dna"):
        cfg, why = _after(_cfg(), alphabet, 21)
        assert _net(cfg.model.params) == {"stem_kernel": 5, "dropout": 0.3, "head_dropout": 0.5} == SHORT_NUCLEIC_PARAMS
        reason = f"stem_kernel 5, dropout 0.3, head_dropout 0.5: median {alphabet.upper()} length 21 ≤ 32"
        assert any(w.startswith(reason) for w in why), why


def test_short_dna_and_rna_regression_also_gets_the_linear_term():
    cfg, why = _after(_cfg(), "rna", 21, "regression")
    assert _net(cfg.model.params) == {**SHORT_NUCLEIC_PARAMS, **SHORT_REGRESSION_PARAMS}
    assert SHORT_REGRESSION_PARAMS == {"linear_positions": 32, "linear_kmers": [2, 3], "linear_gc_window": 9}
    assert any("linear_positions 32, linear_kmers [2,3], linear_gc_window 9: median RNA length 21" in w
               and "ridge solution" in w and "GC fraction of 9-base windows" in w
               for w in why), why
    for target in ("classification", "multilabel"):  # measured on regression only
        assert "linear_kmers" not in _after(_cfg(), "rna", 21, target)[0].model.params
    assert "linear_kmers" not in _after(_cfg(), "dna", 60, "regression")[0].model.params
    assert "linear_kmers" not in _after(_cfg(), "protein", 19, "regression")[0].model.params
    mine, why = _after(_cfg(params={"linear_kmers": [2]}), "rna", 21, "regression")
    assert mine.model.params["linear_kmers"] == [2] and mine.model.params["linear_positions"] == 32
    assert not any("linear_kmers" in w for w in why)


def test_the_stem_stays_for_proteins_longer_inputs_other_models_and_what_the_user_set():
    assert "stem_kernel" not in _after(_cfg(), "protein", 19)[0].model.params  # peptides: the wide stem is better
    assert "stem_kernel" not in _after(_cfg(), "dna", 60)[0].model.params
    assert _after(_cfg(name="motif_cnn"), "rna", 21)[0].model.params == {}
    kept, why = _after(_cfg(params={"stem_kernel": 9, "dropout": 0.2, "channels": 16}), "rna", 21)
    assert _net(kept.model.params) == {"stem_kernel": 9, "dropout": 0.2, "channels": 16, "head_dropout": 0.5}
    assert any(w.startswith("head_dropout 0.5: median RNA length 21") for w in why), why  # only what it added
    merged = _after(_cfg(params={"channels": 16}), "rna", 21)[0]
    assert _net(merged.model.params) == {"channels": 16, **SHORT_NUCLEIC_PARAMS}
    mine = _cfg(params={**SHORT_NUCLEIC_PARAMS, "neighbors": {}})
    assert _after(mine, "rna", 21)[1] == []  # nothing left to choose: no reason given
    off = RunConfig(data={"path": "x.csv"}, train={"preset": "none"})
    assert _after(off, "rna", 21) == (off, [])


def test_advise_gives_the_same_stem_for_short_rna():
    a = advise("sequence", 2000, length=21, alphabet="rna")
    assert a.model == "dilated_resnet" and a.params["stem_kernel"] == SHORT_STEM and a.params["head_dropout"] == 0.5
    assert "model.params.stem_kernel=5" in a.command and "model.params.head_dropout=0.5" in a.command
    small = advise("sequence", 500, length=21, alphabet="rna")  # the small-data regularization keeps its 0.5
    assert small.params["dropout"] == 0.5 and small.params["stem_kernel"] == SHORT_STEM
    assert "stem_kernel" not in advise("sequence", 2000, length=21, alphabet="protein").params


def test_multilabel_trains_without_label_smoothing_unless_the_user_set_it():
    def after(cfg: RunConfig, target_type: str) -> tuple[RunConfig, list[str]]:
        return preset_after_data(cfg, "sequence", 2000, np.array([]), "cpu", target_type, alphabet="protein",
                                 median_length=30)

    cfg, why = after(_cfg(), "multilabel")
    assert cfg.train.label_smoothing == 0.0
    assert any(w.startswith("no label smoothing (was 0.1)") for w in why), why
    assert after(_cfg(), "classification")[0].train.label_smoothing == 0.1
    image, _ = preset_after_data(_cfg(), "image", 500, np.array([]), "cpu", "multilabel")
    assert image.train.label_smoothing == 0.0
    user = RunConfig(data={"path": "x.csv"}, train={"label_smoothing": 0.05})
    assert after(user, "multilabel")[0].train.label_smoothing == 0.05


def test_many_label_sequence_targets_get_a_wider_net_with_its_reason():
    def after(cfg: RunConfig, labels: int, target_type: str = "multilabel") -> tuple[RunConfig, list[str]]:
        return preset_after_data(cfg, "sequence", 7000, np.array([]), "cpu", target_type, alphabet="protein",
                                 median_length=30, labels=labels)

    cfg, why = after(_cfg(), 21)
    assert _net(cfg.model.params) == {"channels": MANY_LABEL_CHANNELS, "dropout": 0.3, "head_dropout": 0.5}
    assert any(w.startswith("channels 64, dropout 0.3, head_dropout 0.5: 21 labels share one learned") for w in why)
    assert _net(after(_cfg(), MANY_LABELS - 1)[0].model.params) == {}
    kept = after(_cfg(params={"channels": 16}), 21)[0].model.params  # the user's choice stays
    assert _net(kept) == {"channels": 16, "dropout": 0.3, "head_dropout": 0.5}
    assert after(_cfg(name="transformer"), 21)[0].model.params == {}
    short_rna, _ = preset_after_data(_cfg(), "sequence", 7000, np.array([]), "cpu", "multilabel", alphabet="rna",
                                     median_length=21, labels=12)
    assert _net(short_rna.model.params) == {**SHORT_NUCLEIC_PARAMS, "channels": MANY_LABEL_CHANNELS}  # short RNA's dropout


def test_many_labels_whose_sets_repeat_get_a_label_set_head_with_its_reason():
    sets = [[0], [1], [0, 1], [2, 5]]

    def after(cfg: RunConfig, label_sets: list[list[int]] | None, n: int = 7000, labels: int = 21
              ) -> tuple[RunConfig, list[str]]:
        return preset_after_data(cfg, "sequence", n, np.array([]), "cpu", "multilabel", alphabet="protein",
                                 median_length=30, labels=labels, label_sets=label_sets)

    cfg, why = after(_cfg(), sets)
    assert _net(cfg.model.params) == {"channels": MANY_LABEL_CHANNELS, "dropout": 0.3, "head_dropout": 0.5,
                                "label_sets": sets}
    assert any(w.startswith("a label-set head over the 4 label sets of the 7,000 training samples (each seen 1750 "
                            "times on average)") for w in why), why
    assert "label_sets" not in after(_cfg(), sets, labels=MANY_LABELS - 1)[0].model.params  # few labels: none
    assert "label_sets" not in after(_cfg(), sets, n=LABEL_SET_REPEATS * len(sets) - 1)[0].model.params  # rare sets
    assert "label_sets" not in after(_cfg(), [[0]])[0].model.params  # one set: nothing to choose between
    many = [[j] for j in range(MAX_LABEL_SETS + 1)]
    assert "label_sets" not in after(_cfg(), many, n=10**7, labels=MAX_LABEL_SETS + 1)[0].model.params
    off = after(_cfg(params={"label_sets": []}), sets)[0].model.params  # the user's [] turns it off
    assert off["label_sets"] == []
    assert "label_sets" not in after(_cfg(name="transformer"), sets)[0].model.params


def test_sequence_classes_and_label_sets_ask_for_neighbour_transfer_with_its_reason():
    for alphabet, k in (("protein", 3), ("dna", 6), ("rna", 6)):
        for target in ("classification", "multilabel"):
            cfg, why = _after(_cfg(), alphabet, 40, target)
            assert cfg.model.params["neighbors"] == {"k": k, "count": 10}
            assert any(w.startswith(f"nearest-neighbour label transfer ({k}-mer Jaccard") for w in why), why
    assert "neighbors" not in _after(_cfg(), "protein", 40, "regression")[0].model.params
    assert "neighbors" not in _after(_cfg(name="transformer"), "protein", 40)[0].model.params
    off, why = _after(_cfg(params={"neighbors": {}}), "protein", 40)
    assert off.model.params["neighbors"] == {} and not any("neighbour" in w for w in why)
    mine = _after(_cfg(params={"neighbors": {"k": 4}}), "protein", 40)[0]
    assert mine.model.params["neighbors"] == {"k": 4}
    image, _ = preset_after_data(_cfg(), "image", 500, np.array([250, 250]), "cpu")
    assert "neighbors" not in image.model.params
