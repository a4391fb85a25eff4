import pytest

from biolens.config import load_config, parse_set
from biolens.errors import ConfigError


def test_yaml_defaults_then_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("data:\n  path: builtin:splice\ntrain:\n  epochs: 3\n  lr: 0.01\n")
    cfg = load_config(p, parse_set(["train.lr=3e-4", "model.params.channels=64"]))
    assert cfg.train.epochs == 3 and cfg.train.lr == 3e-4 and cfg.model.params == {"channels": 64}
    assert cfg.train.batch_size == 64  # default written out


def test_config_errors_name_the_field(tmp_path):
    with pytest.raises(ConfigError, match="field 'train.lr'"):
        load_config(None, {"data": {"path": "x"}, "train": {"lr": -1}})
    with pytest.raises(ConfigError, match="field 'train.epoch'"):
        load_config(None, {"data": {"path": "x"}, "train": {"epoch": 3}})
    with pytest.raises(ConfigError, match="no data given"):
        load_config(None, {})
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml:\d+: invalid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "none.yaml")
