"""Experiment tracking as callbacks: TensorBoard and MLflow (optional extras: ``pip install 'biolens[tracking]'``).

Both are ordinary :class:`~biolens.training.trainer.Callback` objects that ``build_trainer`` adds when
``train.tensorboard`` / ``train.mlflow`` are set, plus two hooks of their own that ``workflows/train.py`` calls
through :func:`finish_tracking`: ``on_run_end(run_dir, metrics)`` once the bundle is complete (final val/test
metrics, ``manifest.json`` written) and ``on_failure()`` when training raised.

- :class:`TensorBoardLogger` (``RUN/tensorboard``): per-epoch scalars (``train/loss``, ``val/loss``, ``val/acc``,
  monitored metrics, ``lr``, epoch time), per-step ``lr`` (every parameter group) and batch loss, optional
  histograms (weights at every epoch end, gradients of the first optimizer step of every epoch, caught by an
  optimizer step pre-hook since the trainer frees gradients after each step), the run's figures (``plots/*.png``)
  as images, and the hyperparameters with the final metrics in TensorBoard's HParams tab.
- :class:`MLflowLogger`: params (the resolved config, flattened), per-epoch metrics, the final val/test metrics,
  the run folder as artefacts (without the MLflow store itself) and the bundle as an MLflow **pyfunc** model
  (``model/``: ``mlflow.pyfunc.load_model(...).predict([...])`` is ``biolens.load(bundle).predict([...])``; the
  loader is ``training/mlflow_model.py``, logged as MLflow "model from code"). ``train.mlflow: local`` (what
  ``--mlflow`` alone sets) keeps a store inside the run folder, ``RUN/mlflow`` (MLflow's file store, which MLflow
  keeps in maintenance mode: it needs no database and costs nothing per run; ``mlflow ui --backend-store-uri
  RUN/mlflow`` shows it); any other value is a tracking URI (``http://host:5000``, ``sqlite:///mlflow.db``,
  ``databricks``). A resumed run continues the same MLflow run. The tracking folders are not part of the bundle's
  manifest (``bundle.UNLISTED_DIRS``): MLflow keeps writing its store after the bundle is complete.

Both packages are imported only when a logger is built; a missing one is a ConfigError naming the install.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from biolens._version import __version__
from biolens.bundle import MANIFEST, git_state, read_manifest, split_headline
from biolens.config import RunConfig
from biolens.errors import ConfigError
from biolens.metrics import metric_names
from biolens.training.trainer import Callback, Trainer

log = logging.getLogger(__name__)

MLFLOW_LOCAL = "local"
MLFLOW_DIR = "mlflow"
TENSORBOARD_DIR = "tensorboard"
MODEL_CODE = Path(__file__).with_name("mlflow_model.py")
_INSTALL = "pip install 'biolens[tracking]'"


# ---- what gets logged ------------------------------------------------------------------------------------------------
def flat_params(cfg: RunConfig | dict[str, Any]) -> dict[str, str | int | float | bool]:
    """The resolved config as ``section.field`` → scalar (lists and empty dicts as their text; None as "None")."""
    data = cfg.model_dump(mode="json") if isinstance(cfg, RunConfig) else cfg
    out: dict[str, str | int | float | bool] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict) and node:
            for k, v in node.items():
                walk(v, f"{prefix}.{k}" if prefix else str(k))
        elif isinstance(node, (bool, int, float, str)):
            out[prefix] = node
        else:
            out[prefix] = str(node)

    walk(data, "")
    return out


def final_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """``{split}_{metric}`` → value for the registered metrics (``biolens.metrics``) in ``metrics.json``'s val and
    test entries, plus ``best_epoch``."""
    out: dict[str, float] = {}
    known = set(metric_names())
    for split in ("val", "test"):
        m = split_headline(metrics.get(split) or {})
        for k, v in m.items():
            if k in known and isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v):
                out[f"{split}_{k}"] = float(v)
    if isinstance(metrics.get("best_epoch"), int):
        out["best_epoch"] = float(metrics["best_epoch"])
    return out


def _numbers(logs: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in logs.items()
            if k != "epoch" and isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)}


def _tag(key: str) -> str:
    """``val_loss`` → ``val/loss`` (TensorBoard groups charts by the part before the slash)."""
    return key.replace("_", "/", 1) if key.startswith(("train_", "val_")) else key


# ---- TensorBoard -----------------------------------------------------------------------------------------------------
class TensorBoardLogger(Callback):
    """TensorBoard events in ``RUN/tensorboard``: scalars, LR, optional histograms, figures, hparams."""

    def __init__(self, run_dir: str | Path, *, histograms: bool = False, hparams: dict[str, Any] | None = None):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError(f"train.tensorboard needs the tensorboard package; {_INSTALL} (or pip install "
                              "tensorboard), or drop --tensorboard") from None
        self.run_dir = Path(run_dir)
        self.logdir = self.run_dir / TENSORBOARD_DIR
        self.writer = SummaryWriter(str(self.logdir))
        self.histograms = histograms
        self.hparams = hparams or {}
        self._grads_wanted = False
        self._hook = None

    def on_fit_start(self, trainer: Trainer) -> None:
        if self.histograms and self._hook is None:
            self._hook = trainer.optimizer.register_step_pre_hook(lambda opt, args, kwargs: self._grads(trainer))

    def on_epoch_start(self, trainer: Trainer) -> None:
        self._grads_wanted = self.histograms

    def _grads(self, trainer: Trainer) -> None:
        if not self._grads_wanted:
            return
        self._grads_wanted = False
        for name, p in trainer.model.named_parameters():
            if p.grad is not None:
                self.writer.add_histogram(f"gradients/{name}", p.grad.detach().float().cpu(), trainer.epoch)

    def on_batch_end(self, trainer: Trainer, loss: float) -> None:
        groups = trainer.optimizer.param_groups
        if len(groups) == 1:
            self.writer.add_scalar("lr/step", groups[0]["lr"], trainer.step)
        else:
            self.writer.add_scalars("lr/step", {f"group{i}": g["lr"] for i, g in enumerate(groups)}, trainer.step)
        self.writer.add_scalar("train/batch_loss", loss, trainer.step)

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, Any]) -> None:
        for k, v in _numbers(logs).items():
            self.writer.add_scalar(_tag(k), v, trainer.epoch)
        if self.histograms:
            for name, p in trainer.model.named_parameters():
                self.writer.add_histogram(f"weights/{name}", p.detach().float().cpu(), trainer.epoch)
        self.writer.flush()

    def on_fit_end(self, trainer: Trainer) -> None:
        self.writer.flush()
        if self._hook is not None:
            self._hook.remove()
            self._hook = None

    def on_run_end(self, run_dir: Path, metrics: dict[str, Any]) -> None:
        """Figures and the HParams entry (hyperparameters → final metrics), then close the event file."""
        from PIL import Image
        from torch.utils.tensorboard.summary import hparams as hparams_summary

        for png in sorted((Path(run_dir) / "plots").glob("*.png")):
            with Image.open(png) as im:
                self.writer.add_image(f"figures/{png.stem}", np.asarray(im.convert("RGB")), dataformats="HWC")
        final = {f"hparam/{k}": v for k, v in final_metrics(metrics).items()}
        if self.hparams and final:
            for summary in hparams_summary(self.hparams, final):
                self.writer.file_writer.add_summary(summary)
            for k, v in final.items():
                self.writer.add_scalar(k, v)
        self.close()

    def on_failure(self) -> None:
        self.close()

    def close(self) -> None:
        self.writer.close()


# ---- MLflow ----------------------------------------------------------------------------------------------------------
def resolve_mlflow_uri(value: str, run_dir: str | Path) -> str:
    """``local`` → the file store ``RUN/mlflow`` (as a ``file:`` URI); anything else must look like a tracking URI
    (``scheme:…`` or ``databricks``)."""
    if value == MLFLOW_LOCAL:
        return (Path(run_dir) / MLFLOW_DIR).resolve().as_uri()
    if value in ("databricks", "databricks-uc") or ("://" in value or value.startswith(("file:", "sqlite:"))):
        return value
    raise ConfigError(f"train.mlflow={value}: not a tracking URI; give local (a store inside the run folder) or a "
                      "URI such as http://HOST:5000, sqlite:///mlflow.db or file:/PATH")


class MLflowLogger(Callback):
    """Params, per-epoch metrics, final metrics, the run folder as artefacts and the bundle as a pyfunc model."""

    def __init__(self, run_dir: str | Path, uri: str = MLFLOW_LOCAL, *, experiment: str = "biolens",
                 params: dict[str, Any] | None = None, tags: dict[str, str] | None = None):
        try:
            import mlflow  # noqa: F401
            from mlflow import MlflowClient
        except ImportError:
            raise ConfigError(f"train.mlflow needs the mlflow package; {_INSTALL} (or pip install mlflow), or "
                              "drop --mlflow") from None
        self.run_dir = Path(run_dir)
        self.local = uri == MLFLOW_LOCAL
        self.uri = resolve_mlflow_uri(uri, run_dir)
        if self.local:
            (self.run_dir / MLFLOW_DIR).mkdir(parents=True, exist_ok=True)
        if self.uri.startswith("file:"):
            # MLflow 3 refuses its file store unless asked for it; a file: store (ours inside the run folder, or one
            # the user named) is asked for
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.experiment = experiment
        self.params = params or {}
        self.tags = tags or {}
        self.client = MlflowClient(tracking_uri=self.uri)
        self.run_id: str | None = None
        self._warned = False

    # a resumed run continues the MLflow run it started
    def state_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "uri": self.uri}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("uri") == self.uri:
            self.run_id = state.get("run_id")

    def _experiment_id(self) -> str:
        found = self.client.get_experiment_by_name(self.experiment)
        return found.experiment_id if found is not None else self.client.create_experiment(self.experiment)

    def on_fit_start(self, trainer: Trainer) -> None:
        if self.run_id is not None:
            try:
                self.client.update_run(self.run_id, status="RUNNING")
                log.info("mlflow: continuing run %s at %s", self.run_id, self.uri)
                return
            except Exception:  # noqa: BLE001 - the store may have moved; start a new run instead
                log.warning("mlflow: run %s not found at %s; starting a new one", self.run_id, self.uri)
        git = git_state()
        tags = {"mlflow.runName": self.run_dir.name, "biolens.version": __version__,
                "biolens.run_dir": str(self.run_dir.resolve()), **self.tags}
        if git["commit"]:
            tags["mlflow.source.git.commit"] = git["commit"]
            tags["biolens.git_dirty"] = str(git["dirty"]).lower()
        try:
            run = self.client.create_run(self._experiment_id(), run_name=self.run_dir.name, tags=tags)
        except Exception as e:  # noqa: BLE001 - MlflowException, connection errors: before any epoch is spent
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise ConfigError(f"train.mlflow={self.uri}: cannot start an MLflow run there ({first[:200]}); check "
                              "the URI and that the server is up, or drop --mlflow") from None
        self.run_id = run.info.run_id
        self._log_params(self.params)
        log.info("mlflow: run %s at %s", self.run_id, self.uri)

    def _log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k[:250], str(v)[:6000]) for k, v in params.items()]
        for start in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(self.run_id, params=items[start:start + 100])

    def _log_metrics(self, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, v, now, step) for k, v in values.items()]
        for start in range(0, len(items), 1000):
            self.client.log_batch(self.run_id, metrics=items[start:start + 1000])

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, Any]) -> None:
        try:
            self._log_metrics(_numbers(logs), trainer.epoch)
        except Exception as e:  # noqa: BLE001 - a tracking hiccup never stops a training
            if not self._warned:
                log.warning("mlflow: logging epoch %d failed (%s: %s); training goes on", trainer.epoch,
                            type(e).__name__, str(e).splitlines()[0] if str(e) else "")
                self._warned = True

    def on_run_end(self, run_dir: Path, metrics: dict[str, Any]) -> None:
        """Final metrics, the run folder as artefacts, the bundle as a pyfunc model; then the run is finished."""
        run_dir = Path(run_dir)
        self._log_metrics(final_metrics(metrics), int(metrics.get("best_epoch") or 0))
        for entry in sorted(run_dir.iterdir()):
            if entry.name == MLFLOW_DIR or entry.name.startswith("."):
                continue
            if entry.is_dir():
                self.client.log_artifacts(self.run_id, str(entry), entry.name)
            else:
                self.client.log_artifact(self.run_id, str(entry))
        self.log_model(run_dir)
        self.client.set_terminated(self.run_id, "FINISHED")
        log.info("mlflow: logged %s to run %s (model at runs:/%s/model)", run_dir, self.run_id, self.run_id)

    def log_model(self, run_dir: Path, artifact_path: str = "model") -> None:
        """The bundle (every file ``manifest.json`` lists, and the manifest) as an MLflow pyfunc model."""
        import warnings

        from importlib.metadata import version

        import mlflow.pyfunc

        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no bar for a local copy
        files = list(read_manifest(run_dir)["files"]) + [MANIFEST]
        with tempfile.TemporaryDirectory(prefix="biolens-mlflow-") as tmp:
            bundle = Path(tmp) / "bundle"
            for rel in files:
                (bundle / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(run_dir / rel, bundle / rel)
            model_dir = Path(tmp) / artifact_path
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # MLflow's notes about type hints and environment inference
                mlflow.pyfunc.save_model(
                    str(model_dir), python_model=str(MODEL_CODE), artifacts={"bundle": str(bundle)},
                    pip_requirements=[f"biolens=={__version__}", f"torch=={version('torch')}"],
                    metadata={"biolens_version": __version__})
            self.client.log_artifacts(self.run_id, str(model_dir), artifact_path)

    def on_failure(self) -> None:
        if self.run_id is not None:
            try:
                self.client.set_terminated(self.run_id, "FAILED")
            except Exception:  # noqa: BLE001 - never hide the training error behind a tracking one
                log.warning("mlflow: could not mark run %s as failed", self.run_id)


# ---- wiring --------------------------------------------------------------------------------------------------------
def check_tracking(cfg: RunConfig) -> None:
    """Raise ConfigError before any run folder exists when a requested tracker's package is missing or the MLflow
    URI is malformed."""
    t = cfg.train
    if t.tensorboard:
        try:
            import torch.utils.tensorboard  # noqa: F401
        except ImportError:
            raise ConfigError(f"train.tensorboard needs the tensorboard package; {_INSTALL} (or pip install "
                              "tensorboard), or drop train.tensorboard") from None
    if t.mlflow:
        resolve_mlflow_uri(t.mlflow, cfg.out or ".")
        try:
            import mlflow  # noqa: F401
        except ImportError:
            raise ConfigError(f"train.mlflow needs the mlflow package; {_INSTALL} (or pip install mlflow), or "
                              "drop train.mlflow") from None


def tracking_callbacks(cfg: RunConfig, run_dir: Path) -> list[Callback]:
    """The trackers ``cfg.train`` asks for (none by default)."""
    t = cfg.train
    out: list[Callback] = []
    params = flat_params(cfg)
    if t.tensorboard:
        out.append(TensorBoardLogger(run_dir, histograms=t.tensorboard_histograms, hparams=params))
    if t.mlflow:
        out.append(MLflowLogger(run_dir, t.mlflow, experiment=t.mlflow_experiment, params=params))
    return out


def finish_tracking(callbacks: Iterable[Callback], run_dir: Path | None = None,
                    metrics: dict[str, Any] | None = None, *, failed: bool = False) -> None:
    """Call ``on_run_end(run_dir, metrics)`` (or ``on_failure()``) on every callback that has it.

    A tracker that fails here (a server gone away, a full disk) is logged as a warning and never raised: the run
    folder is complete by now and must not be treated as a failed training."""
    for cb in callbacks:
        hook = "on_failure" if failed else "on_run_end"
        if not hasattr(cb, hook):
            continue
        try:
            cb.on_failure() if failed else cb.on_run_end(Path(run_dir), metrics or {})
        except Exception as e:  # noqa: BLE001
            log.warning("%s: %s failed (%s: %s); the run folder itself is complete", type(cb).__name__, hook,
                        type(e).__name__, str(e).splitlines()[0] if str(e) else "")


__all__ = ["MLflowLogger", "TensorBoardLogger", "check_tracking", "final_metrics", "finish_tracking",
           "flat_params", "resolve_mlflow_uri", "tracking_callbacks"]

