"""A run folder's life around training: the input files ``overwrite`` must keep, setting a failed run aside, and
the checkpoint an exact resume continues from (after checking that data and model are the run's own)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import torch

from biolens.config import DataConfig, RunConfig, load_config
from biolens.errors import ConfigError
from biolens.models.neighbors import request as neighbor_request
from biolens.training.state import load_checkpoint


def input_files(data: DataConfig) -> list[Path]:
    """Every existing file the data section reads (``LABEL=FILE`` entries included): what ``overwrite`` must keep."""
    items = [data.path] if isinstance(data.path, str) else list(data.path)
    items += [v for v in (data.val, data.test, data.labels) if v]
    items += [v for name in ("intervals", "genome", "blacklist") for v in _as_list(getattr(data, name, None))]
    out = []
    for item in items:
        for candidate in (item, item.partition("=")[2]):
            if candidate and Path(candidate).exists():
                out.append(Path(candidate))
                break
    return out


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]


def set_aside(run_dir: Path) -> str | None:
    """After a failed training: remove the run folder it created, or, when it holds a checkpoint worth resuming,
    move it aside to ``RUN.failed`` (``RUN.failed-2``…) so that ``RUN`` never looks like a finished run."""
    if not run_dir.is_dir():
        return None
    if not (run_dir / "checkpoints" / "last.pt").is_file():
        shutil.rmtree(run_dir, ignore_errors=True)
        return f"nothing was kept ({run_dir} removed)"
    target, k = run_dir.with_name(run_dir.name + ".failed"), 1
    while target.exists():
        k += 1
        target = run_dir.with_name(f"{run_dir.name}.failed-{k}")
    os.replace(run_dir, target)
    return f"the unfinished run was moved to {target} (resume it with resume={target})"


def _asked(section: Any) -> Any:
    """A config section as asked for: neighbour transfer's memory and fit (written after training) left out."""
    params = getattr(section, "params", None)
    if not isinstance(params, dict) or not params.get("neighbors"):
        return section
    return section.model_copy(update={"params": {**params, "neighbors": neighbor_request(params["neighbors"])}})


def resume_state(run: Path, cfg: RunConfig, device: torch.device) -> dict[str, Any]:
    """The checkpoint to resume from, after checking the data and model match the run's own."""
    saved = load_config(run / "config.yaml")
    for section in ("data", "model"):
        if _asked(getattr(saved, section)) != _asked(getattr(cfg, section)):
            raise ConfigError(f"resume {run}: the {section} section differs from {run}/config.yaml; resume "
                              f"with the run's own {section} (only train options such as train.epochs may change)")
    may_change = {"epochs", "early_stopping_patience", "device", "tensorboard", "checkpoint_every", "compile",
                  "tensorboard_histograms", "mlflow", "mlflow_experiment"}
    if saved.train.schedule in ("cosine", "warmup_cosine", "onecycle"):
        may_change.discard("epochs")  # these schedules are laid out over the whole run at the start
    old, new = saved.train.model_dump(), cfg.train.model_dump()
    changed = [k for k in new if new[k] != old.get(k) and k not in may_change]
    if changed:
        raise ConfigError(f"resume {run}: train.{changed[0]} differs from {run}/config.yaml ({old.get(changed[0])!r}); "
                          f"an exact resume keeps it (changeable: {', '.join(sorted(may_change))})")
    return load_checkpoint(run / "checkpoints" / "last.pt", map_location=device)
