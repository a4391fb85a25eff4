"""``biolens tune``: a hyperparameter search with Optuna (TPE sampler, median pruning) that never sees the test split.

Every trial is an ordinary run (``DIR/trials/trial_NNN``) trained with ``train.evaluate_test=false``: it is judged
on its val split only (the objective, by default val ROC AUC for binary tasks and val accuracy otherwise, reported
every epoch so the median pruner can stop hopeless trials early). The study lives in ``DIR/study.db`` (SQLite), so a
killed ``tune`` resumes with ``resume=DIR``: finished trials are kept, the trial that was running is marked failed
and the search goes on to the requested number. The first trial is the configuration itself, so the best trial is
never worse than it on val.

After the search, the best ``top_k`` (default 3) trial runs are combined into an ensemble bundle in ``DIR/best`` and
scored on the test split; with ``top_k=1`` (or fewer than two finished trials) the best trial's configuration is
trained again there instead. The default is measured (BENCHMARKS.md, 30 trials on the bundled sets): the top-3
ensemble did at least as well on test as the retrained best configuration, and it saves the retraining. ``tune.json``,
``trials.csv``, ``plots/`` (optimization history, parameter importances) and ``report.html`` describe the search.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import TrialState

from biolens.bundle import check_run_dir_writable, make_run_dir
from biolens.config import RunConfig, safe_yaml, validate_config
from biolens.errors import ConfigError
from biolens.io import write_json
from biolens.metrics import check_monitor, monitor_direction
from biolens.models import model_info
from biolens.tasks import make_task
from biolens.training.trainer import Callback
from biolens.workflows.ensemble import build_ensemble, evaluate_ensemble
from biolens.workflows.train import TrainResult, build_config, train
from biolens.workflows.tune_report import write_report

log = logging.getLogger(__name__)

STUDY = "study.db"
PLAN = "tune_plan.json"
DEFAULT_TOP_K = 3  # the final model: the ensemble of the best 3 trial runs

# the search space per task kind: dotted config field → {low, high[, log, int]} or {choices: [...]}
TRAIN_SPACE: dict[str, dict[str, Any]] = {
    "train.lr": {"low": 1e-4, "high": 1e-2, "log": True},
    "train.weight_decay": {"low": 1e-5, "high": 1e-1, "log": True},
    "train.batch_size": {"choices": [32, 64, 128]},
}
KIND_SPACE: dict[str, dict[str, dict[str, Any]]] = {
    "sequence": {"data.augment.substitution_rate": {"low": 0.0, "high": 0.05},
                 "data.augment.shift": {"low": 0, "high": 4, "int": True}},
    "image": {"data.image.augment": {"choices": ["medical", "natural", "none"]}},
}
# width and depth of the registered models (any model with a ``dropout`` argument also gets dropout 0 … 0.5)
MODEL_SPACE: dict[str, dict[str, dict[str, Any]]] = {
    "dilated_resnet": {"channels": {"choices": [32, 64, 128]}, "blocks": {"low": 1, "high": 4, "int": True}},
    "dilated_resnet_rc": {"channels": {"choices": [32, 64, 128]}, "blocks": {"low": 1, "high": 4, "int": True}},
    "motif_cnn": {"filters": {"choices": [64, 128, 256]}},
    "resnet": {"widths": {"choices": [[16, 32, 64, 128], [32, 64, 128, 256]]},
               "blocks": {"choices": [[1, 1, 1, 1], [2, 2, 2, 2]]}},
    "simple_cnn": {"widths": {"choices": [[16, 32, 64, 128], [32, 64, 128, 256]]}},
    "transformer": {"dim": {"choices": [64, 128]}, "layers": {"low": 1, "high": 4, "int": True}},
}


@dataclass
class TuneResult:
    out: Path
    best_run: Path  # DIR/best: the ensemble of the top-k trial runs (default) or the retrained best configuration
    best_params: dict[str, Any]
    best_value: float
    objective: str
    study: optuna.Study


DEFAULT_OBJECTIVE = {"regression": "val_spearman", "multilabel": "val_roc_auc"}  # classification: by class count


def search_space(cfg: RunConfig, kind: str, overrides: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """The default space for the task kind and model, with ``overrides`` on top (a field mapped to None is left out
    of the search)."""
    space = {**TRAIN_SPACE, **KIND_SPACE.get(kind, {})}
    name = cfg.model.name
    args = model_info(name).arguments() if name else {}
    for param, dist in MODEL_SPACE.get(name or "", {}).items():
        if param in args:
            space[f"model.params.{param}"] = dist
    if "dropout" in args:
        space["model.params.dropout"] = {"low": 0.0, "high": 0.5}
    for key, dist in (overrides or {}).items():
        if dist is None:
            space.pop(key, None)
        else:
            space[key] = _checked(key, dist)
    return space


def _checked(key: str, dist: Any) -> dict[str, Any]:
    if not key.startswith(("train.", "model.", "data.")):
        raise ConfigError(f"search space {key!r}: expected a config field such as train.lr or model.params.dropout")
    if not isinstance(dist, dict) or not ("choices" in dist or {"low", "high"} <= set(dist)):
        raise ConfigError(f"search space {key}: give {{low: L, high: H[, log: true, int: true]}} or "
                          f"{{choices: [...]}}; got {dist!r}")
    if "choices" in dist and (not isinstance(dist["choices"], list) or not dist["choices"]):
        raise ConfigError(f"search space {key}: choices must be a non-empty list")
    if "low" in dist:
        try:
            low, high = float(dist["low"]), float(dist["high"])
        except (TypeError, ValueError):
            raise ConfigError(f"search space {key}: low and high must be numbers; got {dist!r}") from None
        if not low < high or (dist.get("log") and low <= 0):
            raise ConfigError(f"search space {key}: need low < high (and low > 0 with log: true); got {dist!r}")
    return dict(dist)


def read_space(path: str | Path | None) -> dict[str, Any]:
    """A YAML search space (``train.lr: {low: 1e-4, high: 1e-2, log: true}``, ``model.params.channels:
    {choices: [32, 64]}``, ``train.batch_size: null`` to leave a field out)."""
    if path is None:
        return {}
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"search space file not found: {p}; check the path")
    try:
        raw = safe_yaml(p.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p}: invalid YAML ({str(e).splitlines()[0]}); fix the syntax") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{p}: expected a mapping of config fields to ranges, e.g. train.lr: {{low: 1e-4, high: 1e-2}}")
    return {str(k): v for k, v in raw.items()}


def _suggest(trial: optuna.Trial, key: str, dist: dict[str, Any]) -> Any:
    if "choices" in dist:
        choices = dist["choices"]
        if any(isinstance(c, (list, dict)) for c in choices):  # Optuna takes scalars: lists travel as JSON
            return json.loads(trial.suggest_categorical(key, [json.dumps(c) for c in choices]))
        return trial.suggest_categorical(key, choices)
    if dist.get("int"):
        return trial.suggest_int(key, int(dist["low"]), int(dist["high"]), log=bool(dist.get("log")))
    return trial.suggest_float(key, float(dist["low"]), float(dist["high"]), log=bool(dist.get("log")))


def _set(raw: dict[str, Any], key: str, value: Any) -> None:
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def _get(raw: dict[str, Any], key: str) -> Any:
    node: Any = raw
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _default_point(raw: dict[str, Any], space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The configuration's own values, for the fields whose value lies in the space (trial 0)."""
    point = {}
    for key, dist in space.items():
        v = _get(raw, key)
        if v is None:
            continue
        if "choices" in dist:
            if v in dist["choices"]:
                point[key] = json.dumps(v) if isinstance(v, (list, dict)) else v
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and dist["low"] <= v <= dist["high"]:
            point[key] = v
    return point


class _Pruning(Callback):
    """Report the objective to the trial every epoch; stop the run when the median pruner says so."""

    def __init__(self, trial: optuna.Trial, objective: str):
        self.trial, self.objective, self.pruned = trial, objective, False

    def on_epoch_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        value = logs.get(self.objective)
        if isinstance(value, (int, float)) and math.isfinite(value):
            self.trial.report(float(value), trainer.epoch)
            if self.trial.should_prune():
                self.pruned = True
                trainer.should_stop = True


def _best_value(result: TrainResult, objective: str, direction: str) -> float:
    values = [float(h[objective]) for h in result.history if isinstance(h.get(objective), (int, float))]
    if not values:
        raise ConfigError(f"the trial logged no {objective}; choose another objective (e.g. val_loss)")
    return max(values) if direction == "max" else min(values)


def tune(config: RunConfig | dict | str | Path | None = None, *, data: Any = None, trials: int = 20,
         out: str | Path | None = None, objective: str | None = None, space: dict[str, Any] | str | Path | None = None,
         top_k: int | None = None, timeout: float | None = None, resume: str | Path | None = None, overwrite: bool = False,
         progress: bool = False, model: str | None = None, epochs: int | None = None, **overrides: Any) -> TuneResult:
    """Search hyperparameters for the run a ``train`` call with the same arguments would make (module docstring).

    Args:
        trials: total trials of the study (a resumed study counts the finished ones).
        objective: the logged val value to optimize (``val_roc_auc``, ``val_acc``, ``val_loss``, any registered
            metric as ``val_<name>``); default val ROC AUC for binary tasks, val accuracy otherwise.
        space: search-space overrides (a mapping or a YAML file; see :func:`read_space`).
        top_k: the best ``top_k`` trial runs (default 3) become an ensemble bundle in ``DIR/best``; 1 retrains
            the best configuration there instead. On resume: the study's own, unless given (it only changes the
            final model, which is built again).
        timeout: stop starting new trials after this many seconds.
    """
    if trials < 1:
        raise ConfigError(f"trials={trials}: a study needs at least 1 trial (--trials N)")
    if top_k is not None and top_k < 1:
        raise ConfigError(f"top_k={top_k}: give at least 1 (1 retrains the best configuration; k > 1 ensembles the "
                          "best k trial runs)")
    if resume is not None:
        out = Path(resume)
        for name, value in (("objective", objective), ("space", space)):
            if value is not None:
                raise ConfigError(f"{name}: a resumed study keeps the {name} it was searched with ({out / PLAN}); "
                                  "start a new study in a new folder for another")
        plan = _read_plan(out)
        base, space_d, objective = plan["config"], plan["space"], plan["objective"]
        if top_k is not None and top_k != plan["top_k"]:
            log.info("tune: top_k %d (the study began with %d): the final model in %s follows %d", top_k,
                     plan["top_k"], out / "best", top_k)
            plan["top_k"] = top_k
            write_json(out / PLAN, plan)
        top_k = plan["top_k"]
    else:
        top_k = DEFAULT_TOP_K if top_k is None else top_k
        cfg = build_config(config, data, model, epochs, out, **overrides)
        if cfg.out is None:
            raise ConfigError("out: give the folder for the search (out=DIR, or --out DIR)")
        out = Path(cfg.out)
        task = make_task(cfg)
        if objective is not None and not objective.startswith("val_"):
            raise ConfigError(f"objective {objective!r}: tune optimizes a val value (val_loss, val_acc, val_roc_auc…) "
                              "and never the test split")
        task.prepare()
        binary, kind = len(task.class_names) == 2, task.target_type
        objective = objective or DEFAULT_OBJECTIVE.get(kind) or ("val_roc_auc" if binary else "val_acc")
        check_monitor(objective, binary, kind)
        resolved_model = cfg.model.name or type(task).model_name(cfg)
        cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"name": resolved_model})})
        space_d = search_space(cfg, task.kind, space if isinstance(space, dict) else read_space(space))
        base = cfg.model_dump(mode="json", exclude_unset=True)
        base.setdefault("model", {})["name"] = resolved_model
        check_run_dir_writable(out, overwrite)
        out = make_run_dir(out, overwrite=overwrite)
        plan = {"config": base, "space": space_d, "objective": objective, "top_k": top_k,
                "seed": cfg.train.seed}
        write_json(out / PLAN, plan)
    direction = monitor_direction(objective)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # biolens logs the search itself
    study = optuna.create_study(study_name="biolens", storage=f"sqlite:///{out / STUDY}", load_if_exists=True,
                                direction="maximize" if direction == "max" else "minimize",
                                sampler=optuna.samplers.TPESampler(seed=int(plan["seed"]) % (2**32)),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2))
    for stale in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study._storage.set_trial_state_values(stale._trial_id, state=TrialState.FAIL)  # killed mid-trial
        log.info("trial %d was interrupted: marked failed, the search goes on", stale.number)
    done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))
    if not study.trials:
        point = _default_point(base, space_d)
        if point:
            study.enqueue_trial(point)  # trial 0: the configuration as given
    remaining = max(0, trials - done)
    log.info("tune: %d trials to run (%d done), objective %s (%s), space: %s", remaining, done, objective,
             "maximize" if direction == "max" else "minimize", ", ".join(space_d))

    def run_trial(trial: optuna.Trial) -> float:
        raw = json.loads(json.dumps(base))
        for key, dist in space_d.items():
            _set(raw, key, _suggest(trial, key, dist))
        _set(raw, "train.evaluate_test", False)
        _set(raw, "train.monitor", objective)
        run = out / "trials" / f"trial_{trial.number:03d}"
        if run.exists():
            shutil.rmtree(run)
        raw["out"] = str(run)
        pruning = _Pruning(trial, objective)
        result = train(validate_config(raw, f"trial {trial.number}"), callbacks=[pruning])
        value = _best_value(result, objective, direction)
        trial.set_user_attr("run", str(run))
        if pruning.pruned:
            raise optuna.TrialPruned(f"pruned at epoch {len(result.history)} ({objective} {value:.4f})")
        return value

    if remaining:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.optimize(run_trial, n_trials=remaining, timeout=timeout, catch=(ConfigError,))
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        raise ConfigError(f"no trial of {out} finished (see {out}/trials); fix the configuration and resume")
    best = study.best_trial
    best_run = _final_model(out, base, space_d, study, best, top_k, direction, objective, progress)
    write_report(out, study, objective, direction, space_d, best_run)
    log.info("tune: best trial %d, %s %.4f; final model %s", best.number, objective, best.value, best_run)
    return TuneResult(out, best_run, dict(best.params), float(best.value), objective, study)


def _read_plan(out: Path) -> dict[str, Any]:
    path = out / PLAN
    if not path.is_file():
        raise ConfigError(f"resume {out}: no {PLAN}; it is not a tune folder (start one with tune --out)")
    return json.loads(path.read_text())


def _final_model(out: Path, base: dict[str, Any], space: dict[str, dict[str, Any]], study: optuna.Study,
                 best: optuna.trial.FrozenTrial, top_k: int, direction: str, objective: str, progress: bool) -> Path:
    target = out / "best"
    complete = sorted(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), key=lambda t: t.value,
                      reverse=direction == "max")
    if top_k > 1 and len(complete) >= 2:
        runs = [Path(t.user_attrs["run"]) for t in complete[:top_k] if "run" in t.user_attrs]
        log.info("tune: ensemble of the best %d trials → %s, with the test split scored", len(runs), target)
        bundle = build_ensemble(runs, target, overwrite=True)
        evaluate_ensemble(bundle)
        return bundle
    raw = json.loads(json.dumps(base))
    for key, dist in space.items():
        if key in best.params:
            value = best.params[key]
            listed = any(isinstance(c, (list, dict)) for c in dist.get("choices") or [])
            _set(raw, key, json.loads(value) if listed else value)
    _set(raw, "train.monitor", objective)
    raw["out"] = str(target)
    log.info("tune: retraining the best configuration (trial %d) → %s, with the test split scored", best.number,
             target)
    return train(validate_config(raw, "the best trial"), overwrite=True, progress=progress).run_dir
