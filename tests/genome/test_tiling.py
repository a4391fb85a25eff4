"""Long inputs in predict: tiles instead of truncation, per-tile rows equal to predicting the tiles themselves, and
the per-sequence aggregate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from biolens.cli.main import app
from biolens.errors import ConfigError, DataError
from biolens.tasks import Predictor
from biolens.tasks.tiling import tile_starts
from tests.conftest import MOTIF, write_fasta


def test_tile_starts_cover_the_tail():
    assert tile_starts(100, 40, 20).tolist() == [0, 20, 40, 60]
    assert tile_starts(95, 40, 20).tolist() == [0, 20, 40, 55]  # the last tile ends at the sequence's end
    assert tile_starts(40, 40, 7).tolist() == [0] == tile_starts(12, 40, 7).tolist()


@pytest.fixture
def long_inputs(tmp_path):
    rng = np.random.default_rng(4)
    dna = lambda n: "".join(rng.choice(list("ACGT"), size=n))  # noqa: E731
    seqs = [dna(60) + MOTIF + dna(34), dna(95), dna(25), dna(40)]  # max_len of the run is 40
    return write_fasta(tmp_path / "long.fa", seqs), seqs


def test_tiles_match_predicting_each_tile(trained_run, long_inputs, tmp_path):
    path, seqs = long_inputs
    p = Predictor.load(trained_run)
    out = tmp_path / "preds.csv"
    assert p.predict_files([str(path)], out, tile=True, stride=20) == 4
    tiles = pd.read_csv(tmp_path / "preds.tiles.csv")
    agg = pd.read_csv(out)
    assert tiles.groupby("id").size().to_dict() == {"s1": 4, "s2": 4, "s3": 1, "s4": 1}
    s2 = tiles[tiles.id == "s2"]
    assert s2.start.tolist() == [0, 20, 40, 55] and s2.end.tolist() == [40, 60, 80, 95]
    assert s2.tile.tolist() == [1, 2, 3, 4]
    cut = [seqs[int(i[1:]) - 1][s:e] for i, s, e in zip(tiles.id, tiles.start, tiles.end)]
    direct = p.predict(cut)
    assert np.allclose(tiles["p_promoter"], direct["p_promoter"], atol=1e-5)
    assert agg.columns.tolist() == ["id", "length", "tiles", "mean_p_promoter", "max_p_promoter", "prediction",
                                    "decision"]
    by = tiles.groupby("id")["p_promoter"]
    assert np.allclose(agg.set_index("id")["mean_p_promoter"], by.mean(), atol=1e-5)
    assert np.allclose(agg.set_index("id")["max_p_promoter"], by.max(), atol=1e-5)
    assert agg.length.tolist() == [100, 95, 25, 40]
    threshold = p.contract.threshold
    assert (agg.decision == (agg.max_p_promoter >= threshold)).all()
    assert agg.loc[0, "max_p_promoter"] > 0.5  # the motif in the tail is seen (truncation to 40 would miss it)
    mean_out = tmp_path / "mean.csv"
    p.predict_files([str(path)], mean_out, tile=True, stride=20, aggregate="mean")
    assert (pd.read_csv(mean_out).decision == (agg.mean_p_promoter >= threshold)).all()


def test_tiling_options_and_atomic_outputs(trained_run, long_inputs, tmp_path):
    path, _ = long_inputs
    p = Predictor.load(trained_run)
    with pytest.raises(ConfigError, match="pass tile=True too"):
        p.predict_files([str(path)], tmp_path / "x.csv", stride=10)
    with pytest.raises(ConfigError, match="stride 41: give 1"):
        p.predict_files([str(path)], tmp_path / "x.csv", tile=True, stride=41)
    with pytest.raises(ConfigError, match="aggregate 'median'"):
        p.predict_files([str(path)], tmp_path / "x.csv", tile=True, aggregate="median")
    bad = tmp_path / "bad.fa"
    bad.write_text(">a\n" + "ACGT" * 30 + "\n>b\nACGTJJ\n")
    with pytest.raises(DataError, match=r"bad\.fa:3: invalid character 'J'"):
        p.predict_files([str(bad)], tmp_path / "bad.csv", tile=True)
    assert sorted(f.name for f in tmp_path.iterdir()) == ["bad.fa", "long.fa"]  # nothing half-written


def test_predict_cli_tile(trained_run, long_inputs, tmp_path):
    path, _ = long_inputs
    out = tmp_path / "cli.csv"
    r = CliRunner().invoke(app, ["predict", str(trained_run), str(path), "--out", str(out), "--tile", "--stride",
                                 "10", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert len(pd.read_csv(out)) == 4 and len(pd.read_csv(tmp_path / "cli.tiles.csv")) == 7 + 7 + 1 + 1
    r = CliRunner().invoke(app, ["predict", str(trained_run), str(path), "--out", str(out), "--stride", "10"])
    assert r.exit_code == 2 and "pass --tile too" in r.output
