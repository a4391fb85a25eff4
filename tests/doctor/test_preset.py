"""``train.preset=auto`` (doctor/advise.py): the choices written into the config, each with its reason."""

from __future__ import annotations

import numpy as np

from biolens.config import RunConfig
from biolens.doctor.advise import SHORT_STEM, advise, preset_after_data


def _cfg(**model: object) -> RunConfig:
    return RunConfig(data={"path": "x.csv"}, model=model)


def _after(cfg: RunConfig, alphabet: str, median: float) -> tuple[RunConfig, list[str]]:
    return preset_after_data(cfg, "sequence", 2000, np.array([1000, 1000]), "cpu", "regression", alphabet=alphabet,
                             median_length=median)


def test_short_dna_and_rna_get_a_narrow_stem_with_its_reason():
    for alphabet in ("rna", "dna"):
        cfg, why = _after(_cfg(), alphabet, 21)
        assert cfg.model.params == {"stem_kernel": SHORT_STEM}
        assert any(f"stem kernel {SHORT_STEM}: median {alphabet.upper()} length 21" in w for w in why), why


def test_the_stem_stays_for_proteins_longer_inputs_other_models_and_what_the_user_set():
    assert "stem_kernel" not in _after(_cfg(), "protein", 19)[0].model.params  # peptides: the wide stem is better
    assert "stem_kernel" not in _after(_cfg(), "dna", 60)[0].model.params
    assert _after(_cfg(name="motif_cnn"), "rna", 21)[0].model.params == {}
    kept = _after(_cfg(params={"stem_kernel": 9, "channels": 16}), "rna", 21)[0]
    assert kept.model.params == {"stem_kernel": 9, "channels": 16}
    merged = _after(_cfg(params={"channels": 16}), "rna", 21)[0]
    assert merged.model.params == {"channels": 16, "stem_kernel": SHORT_STEM}
    off = RunConfig(data={"path": "x.csv"}, train={"preset": "none"})
    assert _after(off, "rna", 21) == (off, [])


def test_advise_gives_the_same_stem_for_short_rna():
    a = advise("sequence", 2000, length=21, alphabet="rna")
    assert a.model == "dilated_resnet" and a.params["stem_kernel"] == SHORT_STEM
    assert "model.params.stem_kernel=5" in a.command
    assert "stem_kernel" not in advise("sequence", 2000, length=21, alphabet="protein").params
