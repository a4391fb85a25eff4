"""Image explanations: Grad-CAM (validated on a bright square), saliency, occlusion, overlays, coordinates, errors."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from biolens.contract import InputContract
from biolens.tasks import Predictor
from biolens.errors import BiolensWarning, ConfigError, DataError, ModelError
from biolens.interpret import methods
from biolens.interpret.images import (SUMMARY_COLUMNS, attribute, cam_layer, explain_images,
                                      map_on_original, occlusion_window, to_original)
from biolens.models import create_model
from biolens.models.registry import list_models, model_info
from tests.image_helpers import write_png
from tests.interpret.image_explain_helpers import inside, square_dataset, square_image, square_probes

SCRATCH = {"widths": [4, 8, 8], "blocks": [1, 1, 1]}


def hand_predictor(tmp_path, resize_to: int = 36, size: int = 32, **contract) -> Predictor:
    """A random-init 3-stage ResNet behind an image contract that center-crops ``size`` out of ``resize_to``."""
    torch.manual_seed(0)
    model = create_model("resnet", in_channels=1, num_classes=2, **SCRATCH)
    c = InputContract(task="image", class_names=["absent", "square"], positive_class="square", image_size=size,
                      channels=1, mean=[0.15], std=[0.2], resize_to=resize_to, **contract)
    return Predictor(model, c, None, tmp_path, torch.device("cpu"))


def probe_files(folder, n=3, size=32, seed=5):
    rng = np.random.default_rng(seed)
    return [write_png(folder / f"img{i}.png", square_image(rng, True, size)[0]) for i in range(n)]


# ---- the validation: Grad-CAM finds the planted square ---------------------------------------------------------------
def test_gradcam_peak_falls_inside_the_bright_square(tmp_path):
    from biolens.workflows.train import train

    root = square_dataset(tmp_path / "data", {"train": 60, "val": 10, "test": 5}, seed=0)
    res = train({"data": {"path": str(root), "image": {"image_size": 32, "cache_dir": str(tmp_path / "cache"),
                                                        "augment": "none"}},
                 "model": {"name": "resnet", "params": {"widths": [8, 16, 32], "blocks": [1, 1, 1]}},
                 "train": {"epochs": 6, "batch_size": 16, "lr": 3e-3, "early_stopping_patience": None, "seed": 0},
                 "out": str(tmp_path / "run")})
    assert res.metrics["test"]["accuracy"] >= 0.9
    predictor = Predictor.load(res.run_dir)
    probes = square_probes(tmp_path / "probes", 40, seed=1)
    rows = explain_images(predictor, [str(p) for p, _ in probes], "gradcam", tmp_path / "cam")
    hits = [inside(r["peak_row"], r["peak_col"], box) for r, (_, box) in zip(rows, probes) if r["predicted"] == "square"]
    rate = sum(hits) / len(hits)
    print(f"grad-cam peak inside the square: {sum(hits)}/{len(hits)} = {rate:.1%} of correctly classified positives "
          f"({len(hits)}/{len(rows)} classified correctly; chance ≈ {64 / 1024:.1%})")
    assert len(hits) >= 36 and rate >= 0.9

    # the same squares stretched to 32×64 originals: the peak comes back in the original's own pixels
    rng = np.random.default_rng(2)
    wide = []
    for i in range(10):
        img, (r, c, side) = square_image(rng, True)
        big = np.asarray(Image.fromarray(img).resize((64, 32), Image.Resampling.NEAREST))
        wide.append((write_png(tmp_path / "wide" / f"wide_{i}.png", big), (r, 2 * c, side, 2 * side)))
    rows = explain_images(predictor, str(tmp_path / "wide"), "gradcam", tmp_path / "cam_wide")
    ok = [r for r in rows if r["predicted"] == "square"]
    boxes = dict((str(p), b) for p, b in wide)
    hits = [boxes[r["input"]][0] <= r["peak_row"] < boxes[r["input"]][0] + boxes[r["input"]][2]
            and boxes[r["input"]][1] <= r["peak_col"] < boxes[r["input"]][1] + boxes[r["input"]][3] for r in ok]
    print(f"stretched 32×64 originals: peak inside the stretched square {sum(hits)}/{len(hits)}")
    assert len(ok) >= 9 and sum(hits) / len(hits) >= 0.9
    assert all(r["peak_col"] >= 0 and r["peak_col"] < 64 and r["peak_row"] < 32 for r in rows)


# ---- Grad-CAM on every registered image model ------------------------------------------------------------------------
@pytest.mark.parametrize("name", list_models(task="image"))
def test_gradcam_works_for_every_image_model(name):
    torch.manual_seed(0)
    channels = 3 if model_info(name).cls.transfer else 1
    model = create_model(name, in_channels=channels, num_classes=2)
    model.train()
    with torch.no_grad():  # batch-norm statistics of real-looking activations (random init otherwise vanishes)
        for _ in range(2):
            model(torch.randn(4, channels, 64, 64))
    model.eval()
    layer = cam_layer(model)
    last = model.get_submodule(model.stages[-1])
    assert layer is last or any(m is layer for m in last.modules())  # the last conv stage
    seen = {}
    hook = layer.register_forward_hook(lambda m, i, o: seen.update(shape=tuple(o.shape)))
    x = torch.randn(2, channels, 64, 64)
    with warnings.catch_warnings():
        warnings.simplefilter("error", BiolensWarning)  # a 1×1 layer would warn: no position in the map
        maps = attribute(model, x, torch.tensor([0, 1]), "gradcam")
    hook.remove()
    assert seen["shape"][-1] >= 2 and seen["shape"][-2] >= 2
    assert maps.shape == (2, 64, 64) and torch.isfinite(maps).all() and (maps >= 0).all()
    assert any(float(m.max() - m.min()) > 0 for m in maps)
    assert not model.training


def test_gradcam_warns_when_the_layer_has_no_position():
    model = create_model("simple_cnn", in_channels=1, num_classes=2, widths=[4, 4, 4, 4], hidden=8).eval()
    with pytest.warns(BiolensWarning, match="1×1"):
        attribute(model, torch.randn(1, 1, 8, 8), torch.tensor([1]), "gradcam")


def test_cam_layer_of_simple_cnn_is_before_the_last_pool():
    model = create_model("simple_cnn", widths=[4, 4, 4, 8], hidden=8)
    assert cam_layer(model) is model.stage4[1]  # the last ConvBlock, not the max pool that halves it


# ---- saliency and occlusion ------------------------------------------------------------------------------------------
def test_saliency_is_the_absolute_input_gradient():
    torch.manual_seed(0)
    model = create_model("resnet", in_channels=3, num_classes=3, **SCRATCH).eval()
    x = torch.randn(2, 3, 16, 16)
    maps = attribute(model, x, torch.tensor([2, 0]), "saliency")
    xr = x.clone().requires_grad_(True)
    model(xr)[[0, 1], [2, 0]].sum().backward()
    assert maps.shape == (2, 16, 16)
    torch.testing.assert_close(maps, xr.grad.abs().amax(dim=1))


def test_occlusion_is_the_logit_drop_under_a_sliding_mean_patch():
    class Spot(torch.nn.Module):  # logit 1 = mean of the 4×4 block at rows 8-11, cols 4-7; logit 0 = 0
        def forward(self, x):
            return torch.stack([torch.zeros(len(x)), x[:, :, 8:12, 4:8].mean(dim=(1, 2, 3))], dim=1)

    x = torch.ones(1, 1, 16, 16)
    window, stride = occlusion_window(16)
    assert (window, stride) == (2, 1)
    maps = attribute(Spot(), x, torch.tensor([1]), "occlusion")
    assert maps.shape == (1, 16, 16)
    assert float(maps[0, 8:12, 4:8].min()) > 0 and float(maps[0, :6].abs().max()) == 0  # only the block matters
    assert np.unravel_index(int(maps[0].argmax()), (16, 16)) in {(r, c) for r in range(8, 12) for c in range(4, 8)}
    assert occlusion_window(224) == (32, 16) and occlusion_window(28) == (4, 2)


def test_unknown_method_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="gradcam, saliency, occlusion"):
        attribute(torch.nn.Conv2d(1, 1, 1), torch.zeros(1, 1, 4, 4), torch.tensor([0]), "lime")
    with pytest.raises(ConfigError, match=r"method .ig. is not valid for image runs \(a method for sequence runs; "
                                          r"this is an image run\)"):
        explain_images(hand_predictor(tmp_path), [], "ig", tmp_path / "out")


# ---- geometry: model input ↔ original pixels -------------------------------------------------------------------------
def test_coordinates_map_back_through_resize_and_center_crop():
    c = InputContract(task="image", class_names=["a", "b"], image_size=32, channels=1, mean=[0], std=[1], resize_to=40)
    # crop offset 4; a 40×80 original is 1× tall and 2× wide relative to the 40×40 resize
    assert to_original(0, 0, (40, 80), c) == (4, 9)
    assert to_original(31, 31, (40, 80), c) == (35, 71)
    amap = np.zeros((32, 32), np.float32)
    amap[10, 20] = 1
    heat = map_on_original(amap, (40, 80), c)
    assert heat.shape == (40, 80)
    assert np.isnan(heat[:4]).all() and np.isnan(heat[36:]).all() and np.isnan(heat[:, :8]).all()
    assert np.isfinite(heat[4:36, 8:72]).all()
    r, col = np.unravel_index(int(np.nanargmax(heat)), heat.shape)
    assert (r, col) in {to_original(10, 20, (40, 80), c), (14, 48)}


# ---- the full pipeline on files --------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", methods("image"))
def test_explain_images_writes_overlays_arrays_and_summary(tmp_path, method):
    files = probe_files(tmp_path / "in")
    before = [f.read_bytes() for f in files]
    p = hand_predictor(tmp_path)
    out = tmp_path / "out"
    rows = explain_images(p, str(tmp_path / "in" / "*.png"), method, out)
    assert [r["input"] for r in rows] == [str(f) for f in files]
    assert [f.read_bytes() for f in files] == before  # originals untouched
    frame = p.predict([str(f) for f in files])
    for r, f, (_, pred) in zip(rows, files, frame.iterrows()):
        assert set(SUMMARY_COLUMNS) <= set(r)
        assert r["predicted"] == pred["prediction"] and r["target_class"] == r["predicted"]
        assert r["probability"] == pytest.approx(pred[f"p_{r['target_class']}"], abs=1e-5)  # same preprocessing
        amap = np.load(r["array"])
        assert amap.shape == (32, 32) and amap.dtype == np.float32 and np.isfinite(amap).all()
        assert r["map_max"] == pytest.approx(float(amap.max()))
        if method != "occlusion":
            assert (amap >= 0).all()
        if r["peak_row"] is not None:
            assert 0 <= r["peak_row"] < 32 and 0 <= r["peak_col"] < 32
        with Image.open(r["overlay"]) as im:
            im.verify()
        with Image.open(r["overlay"]) as im:
            assert im.format == "PNG" and im.mode == "RGB" and im.size[0] > 2 * 256 and im.size[1] > 256
        assert r["overlay"] == str(out / f"{f.stem}.{method}.png")
    summary = pd.read_csv(out / f"{method}.tsv", sep="\t")
    assert list(summary.columns) == SUMMARY_COLUMNS and len(summary) == 3
    assert summary["input"].tolist() == [str(f) for f in files]
    assert not list(out.glob(".*.tmp"))


def test_explicit_class_and_the_overlay_marks_the_peak(tmp_path):
    files = probe_files(tmp_path / "in", n=2)
    p = hand_predictor(tmp_path)
    rows = explain_images(p, [str(f) for f in files], "saliency", tmp_path / "out", target_class="absent")
    assert [r["target_class"] for r in rows] == ["absent", "absent"]
    probs = p.predict([str(f) for f in files])["p_absent"].to_numpy()
    assert [r["probability"] for r in rows] == pytest.approx(probs, abs=1e-5)
    other = explain_images(p, [str(f) for f in files], "saliency", tmp_path / "out2", target_class="square")
    assert not np.allclose(np.load(rows[0]["array"]), np.load(other[0]["array"]))  # the class changes the map


def test_unknown_class_names_the_valid_ones(tmp_path):
    files = probe_files(tmp_path / "in", n=1)
    with pytest.raises(DataError, match=r"'pneumonia' is not a class of this model; valid classes: absent, square"):
        explain_images(hand_predictor(tmp_path), [str(files[0])], "gradcam", tmp_path / "out", target_class="pneumonia")
    assert not (tmp_path / "out").exists()


def test_bad_inputs_fail_before_anything_is_written(tmp_path):
    files = probe_files(tmp_path / "in", n=2)
    (tmp_path / "in" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    p = hand_predictor(tmp_path)
    with pytest.raises(DataError, match="broken.png"):
        explain_images(p, str(tmp_path / "in"), "gradcam", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(DataError, match="file not found"):
        explain_images(p, [str(files[0]), str(tmp_path / "nope.png")], "gradcam", tmp_path / "out")
    # explaining the outputs of an earlier run in place would overwrite an input: refused
    (tmp_path / "in" / "broken.png").unlink()
    explain_images(p, [str(files[0])], "gradcam", tmp_path / "in")
    with pytest.raises(DataError, match="overwrite an input"):
        explain_images(p, [str(files[0]), str(tmp_path / "in" / "img0.gradcam.png")], "gradcam", tmp_path / "in")


def test_repeated_stems_and_sequence_runs(tmp_path):
    rng = np.random.default_rng(0)
    a = write_png(tmp_path / "a" / "x.png", square_image(rng, True)[0])
    b = write_png(tmp_path / "b" / "x.png", square_image(rng, False)[0])
    rows = explain_images(hand_predictor(tmp_path), [str(a), str(b)], "gradcam", tmp_path / "out")
    assert [r["overlay"] for r in rows] == [str(tmp_path / "out" / "x.gradcam.png"), str(tmp_path / "out" / "x-2.gradcam.png")]
    seq = hand_predictor(tmp_path)
    seq.contract = InputContract(task="sequence", class_names=["a", "b"], alphabet="dna", max_len=10)
    with pytest.raises(ModelError, match="sequence run"):
        explain_images(seq, [str(a)], "gradcam", tmp_path / "out")


def test_rgb_and_non_square_originals(tmp_path):
    rng = np.random.default_rng(3)
    img = np.stack([rng.integers(0, 255, (30, 50)).astype(np.uint8)] * 3, axis=-1)
    f = tmp_path / "rgb.png"
    Image.fromarray(img).save(f)
    rows = explain_images(hand_predictor(tmp_path, resize_to=32), [str(f)], "gradcam", tmp_path / "out")
    assert np.load(rows[0]["array"]).shape == (32, 32)
    if rows[0]["peak_row"] is not None:
        assert 0 <= rows[0]["peak_row"] < 30 and 0 <= rows[0]["peak_col"] < 50
    with Image.open(rows[0]["overlay"]) as im:
        assert im.size[1] > 256  # a 30-px-tall original is drawn at ≥ 256 px


# ---- end to end through `biolens explain` ----------------------------------------------------------------------------
def test_biolens_explain_cli_on_an_image_run(tmp_path):
    from typer.testing import CliRunner

    from biolens.cli.main import app
    from biolens.workflows.train import train

    root = square_dataset(tmp_path / "data", {"train": 8, "val": 4, "test": 2})
    res = train({"data": {"path": str(root), "image": {"image_size": 32, "cache_dir": str(tmp_path / "cache")}},
                 "model": {"name": "resnet", "params": SCRATCH}, "train": {"epochs": 1, "batch_size": 8},
                 "out": str(tmp_path / "run")})
    files = probe_files(tmp_path / "in", n=2)
    runner = CliRunner()
    out = tmp_path / "out"
    result = runner.invoke(app, ["explain", str(res.run_dir), str(tmp_path / "in"), "--method", "occlusion",
                                 "--out", str(out), "--class", "square", "-q"])
    assert result.exit_code == 0, result.output
    summary = pd.read_csv(out / "occlusion.tsv", sep="\t")
    assert summary["input"].tolist() == [str(f) for f in files] and set(summary["target_class"]) == {"square"}
    assert all((out / f"{f.stem}.occlusion.png").is_file() and (out / f"{f.stem}.occlusion.npy").is_file() for f in files)
    bad = runner.invoke(app, ["explain", str(res.run_dir), str(files[0]), "--method", "gradcam", "--out", str(out),
                              "--class", "covid"])
    assert bad.exit_code == 2 and "valid classes: absent, square" in bad.output and "Traceback" not in bad.output
