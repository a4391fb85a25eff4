"""Run folders: safetensors weights, resolved config, input contract and a manifest. Nothing is unpickled."""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import subprocess
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from safetensors import SafetensorError
from safetensors.torch import load_model, save_model
from torch import nn

from biolens._version import __version__
from biolens.config import safe_yaml
from biolens.errors import BundleError, ConfigError
from biolens.io import file_mode, sha256_file, temp_beside, write_json


log = logging.getLogger(__name__)

REQUIRED_FILES = ("config.yaml", "contract.json", "model.safetensors")
MANIFEST = "manifest.json"
BUNDLE_FORMAT = "1.0.0"  # semantic version of the run-folder layout; a newer major version is refused


RUN_MARKERS = ("config.yaml", "contract.json", "manifest.json", "checkpoints")
RUN_MARK = ".biolens-run"  # written first into every new run folder


def is_run_folder(path: str | Path) -> bool:
    """Whether ``path`` is a biolens run folder: marked at creation, or a config plus a contract, manifest or
    checkpoints (run folders made before the mark existed)."""
    p = Path(path)
    if (p / RUN_MARK).is_file():
        return True
    return (p / "config.yaml").is_file() and any((p / m).exists() for m in RUN_MARKERS[1:])


def check_run_dir_writable(out: str | Path, overwrite: bool = False, keep: Iterable[str | Path] = ()) -> Path:
    """Every check of ``make_run_dir`` without touching the disk, so bad options fail before anything is written."""
    p = Path(out)
    if p.exists() and not p.is_dir():
        raise ConfigError(f"out {p} is a file; give a folder path")
    if p.is_dir() and any(p.iterdir()):
        if not overwrite:
            raise ConfigError(f"out {p} already exists and is not empty; choose another name or pass overwrite=True")
        if not is_run_folder(p):
            raise ConfigError(f"out {p} is not a biolens run folder (no config.yaml with a contract, manifest or "
                              "checkpoints), so overwrite=True will not delete it; choose another out folder")
        inside = next((Path(k) for k in keep if Path(k).resolve().is_relative_to(p.resolve())), None)
        if inside is not None:
            raise ConfigError(f"out {p} holds the training data ({inside}); overwriting it would delete the data: "
                              "choose another out folder")
    return p


def make_run_dir(out: str | Path, overwrite: bool = False, keep: Iterable[str | Path] = ()) -> Path:
    """Create the run folder; refuse to mix a new run into a non-empty folder unless ``overwrite``, and then only
    replace a biolens run folder that holds none of ``keep`` (the input files). The folder is marked as a run at
    once (``.biolens-run``), so a run killed before it wrote anything can still be overwritten."""
    p = check_run_dir_writable(out, overwrite, keep)
    try:
        if p.is_dir() and any(p.iterdir()):
            shutil.rmtree(p)
        p.mkdir(parents=True, exist_ok=True)
        (p / RUN_MARK).write_text("a biolens run folder\n")
    except OSError as e:
        raise ConfigError(f"out {p}: cannot create the run folder ({e.strerror or e}); choose a writable place") from None
    return p


def remove_temporaries(run_dir: str | Path) -> int:
    """Delete the temporary files an interrupted atomic write left behind (``.NAME.*.tmp``); returns how many."""
    n = 0
    for p in Path(run_dir).rglob(".*.tmp"):
        if p.is_file():
            p.unlink(missing_ok=True)
            n += 1
    if n:
        log.info("removed %d temporary file(s) left by an interrupted write in %s", n, run_dir)
    return n


def save_weights(model: nn.Module, path: str | Path) -> None:
    path = Path(path)
    fd, tmp = temp_beside(path)
    os.close(fd)
    try:
        save_model(model, tmp)
        os.chmod(tmp, file_mode())  # safetensors writes a new, private (0600) file: share it like the rest of the run
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_weights(model: nn.Module, path: str | Path, ignore: str | None = None) -> nn.Module:
    """Load ``path`` into ``model``, every tensor matching; ``ignore``: a name prefix of tensors the file may hold
    beyond the model's (e.g. a finished run's neighbour-transfer memory, when a resume loads its network)."""
    try:
        missing, unexpected = load_model(model, str(path), strict=False)
        if ignore:
            unexpected = [k for k in unexpected if not k.startswith(ignore)]
    except (SafetensorError, OSError, RuntimeError) as e:
        raise BundleError(f"{path}: cannot load weights ({str(e).splitlines()[0]}); the file is damaged or from another model") from None
    if missing or unexpected:
        raise BundleError(f"{path}: weights do not match the model (missing {sorted(missing)[:3]}, unexpected "
                          f"{sorted(unexpected)[:3]}); config.yaml and model.safetensors come from different runs")
    return model


def check_run_dir(run: str | Path) -> Path:
    p = Path(run)
    if not p.is_dir():
        raise BundleError(f"run folder not found: {p}; give the --out folder of a finished `biolens train`")
    missing = [f for f in REQUIRED_FILES if not (p / f).is_file()]
    if missing:
        raise BundleError(f"{p} is not a complete run folder (missing {', '.join(missing)}); train again or copy the whole folder")
    return p


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = safe_yaml(path.read_bytes().decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        problem = str(getattr(e, "problem", None) or e).splitlines()[0]
        raise BundleError(f"{path}: invalid YAML ({problem}); restore it from the original run") from None
    if not isinstance(data, dict):
        raise BundleError(f"{path}: expected a mapping; restore it from the original run")
    return data


def _git(args: list[str], cwd: Path) -> str | None:
    """``git ARGS`` in ``cwd``: its stdout, or None when git is missing, ``cwd`` is no repository or git fails."""
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def git_state(path: str | Path | None = None) -> dict[str, Any]:
    """The git commit of the repository holding ``path`` (default: the working directory) and whether its tracked
    files differ from that commit (``dirty``; untracked files, such as run folders, do not count).

    ``{"commit": None, "dirty": None}`` when ``path`` is not inside a git repository (or git is not installed)."""
    cwd = Path(path) if path is not None else Path.cwd()
    commit = _git(["rev-parse", "--verify", "HEAD"], cwd)
    if commit is None:
        return {"commit": None, "dirty": None}
    status = _git(["status", "--porcelain", "--untracked-files=no"], cwd)
    return {"commit": commit.strip() or None, "dirty": None if status is None else bool(status.strip())}


def _git_commit() -> str | None:
    """The commit of biolens's own source checkout (an editable install), else None: only when this file is tracked
    by the repository around it, so a biolens installed into a virtualenv inside the user's project never reports
    the project's commit as its own."""
    here = Path(__file__).parent
    if _git(["ls-files", "--error-unmatch", Path(__file__).name], here) is None:
        return None
    commit = _git(["rev-parse", "--verify", "HEAD"], here)
    return commit.strip() or None if commit is not None else None


def hardware() -> dict[str, Any]:
    """Where the bundle was made: CPU architecture and count, memory, accelerators."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = None
    cuda = torch.cuda.is_available()
    return {
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "memory_bytes": memory,
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else [],
        "cuda_version": torch.version.cuda if cuda else None,
    }


def environment() -> dict[str, Any]:
    """Provenance for the manifest: versions, the user's project commit (``git_commit`` and ``git_dirty`` of the
    working directory's repository, None outside one), biolens's own commit when it runs from a checkout
    (``biolens_git_commit``), hardware."""
    project = git_state()
    return {
        "biolens": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "git_commit": project["commit"],
        "git_dirty": project["dirty"],
        "biolens_git_commit": _git_commit(),
        "hardware": hardware(),
    }


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# Folders of a run that the manifest never lists: experiment-tracking logs, written to after the bundle is complete
# (TensorBoard's figures and hparams, MLflow's local store with run status and artefacts) and not needed to load
# the model, like log.txt.
UNLISTED_DIRS = ("mlflow", "tensorboard", "folds", "trials")  # folds/trials: runs of cv/tune, each its own bundle


def _hash_files(run_dir: Path) -> dict[str, str]:
    return {
        p.relative_to(run_dir).as_posix(): sha256_file(p)
        for p in sorted(run_dir.rglob("*"))
        if p.is_file() and p.name != MANIFEST and not p.name.startswith(".") and p.name != "log.txt"
        and not any(part.startswith(".") for part in p.relative_to(run_dir).parts)
        and p.relative_to(run_dir).parts[0] not in UNLISTED_DIRS
    }


def refresh_manifest(run_dir: str | Path, written: Iterable[str | Path] | None = None) -> dict[str, Any]:
    """Rewrite ``manifest.json`` after files in the run changed: new checksums and ``updated`` time; creation time,
    the versions the run was trained with and extra fields (e.g. the dataset fingerprint) are kept.

    ``written``: the files the caller just wrote. When given, every other listed file must still match its old
    checksum (BundleError naming it otherwise), so a refresh never blesses a file changed behind the caller's back.
    """
    run_dir = Path(run_dir)
    path = run_dir / MANIFEST
    if not path.is_file():
        return write_manifest(run_dir)
    old = read_manifest(run_dir)
    if written is not None:
        mine = {(run_dir / w).resolve() for w in written}
        for rel, state in check_files(run_dir, old).items():
            if state != "ok" and (run_dir / rel).resolve() not in mine:
                raise BundleError(f"{run_dir / rel} is {state} since manifest.json was written, so the manifest is "
                                  "not refreshed; re-copy the run folder or retrain")
    # provenance stays what the run was made with: fields an older manifest lacks (e.g. hardware) are not filled in
    # from the machine that refreshes it, which would claim the bundle was made here
    manifest = {k: v for k, v in old.items() if k != "files"}
    manifest["bundle_format"] = BUNDLE_FORMAT
    manifest["updated"] = _now()
    manifest["files"] = _hash_files(run_dir)
    write_json(path, manifest)
    return manifest


def write_manifest(run_dir: str | Path, **extra: Any) -> dict[str, Any]:
    """``manifest.json``: bundle format version, creation time, versions (biolens, torch, git commit), hardware,
    extra fields (dataset fingerprint) and the SHA-256 of every other file."""
    run_dir = Path(run_dir)
    manifest = {"bundle_format": BUNDLE_FORMAT, "created": _now(), **environment(), **extra,
                "files": _hash_files(run_dir)}
    write_json(run_dir / MANIFEST, manifest)
    return manifest


def read_manifest(run_dir: str | Path) -> dict[str, Any]:
    """The parsed ``manifest.json`` of a run; BundleError when missing or unreadable."""
    run = Path(run_dir)
    path = run / MANIFEST
    if not path.is_file():
        if not (run / "metrics.json").is_file() and (run / "checkpoints" / "last.pt").is_file():
            raise BundleError(f"{path} is missing, so the bundle cannot be verified: training of {run} did not finish "
                              f"(no metrics.json); resume it with `biolens train --resume {run}` or retrain")
        raise BundleError(f"{path} is missing, so the bundle cannot be verified; copy the whole run folder "
                          "(or retrain)")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BundleError(f"{path}: not valid JSON ({e}); re-copy the run folder or retrain") from None
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        raise BundleError(f"{path}: no 'files' checksum table; re-copy the run folder or retrain")
    return data


def _check_format(path: Path, version: str | None) -> None:
    if version is None:  # manifests written before the format was versioned
        return
    try:
        major = int(str(version).split(".")[0])
    except ValueError:
        raise BundleError(f"{path}: bundle_format {version!r} is not a semantic version; re-copy the run folder") from None
    if major > int(BUNDLE_FORMAT.split(".")[0]):
        raise BundleError(f"{path}: bundle format {version} is newer than this biolens understands ({BUNDLE_FORMAT}); "
                          "upgrade biolens")


def check_files(run_dir: str | Path, manifest: dict[str, Any] | None = None) -> dict[str, str]:
    """Status of every file the manifest lists: ``ok``, ``missing`` or ``changed`` (never raises for files)."""
    run_dir = Path(run_dir)
    manifest = manifest if manifest is not None else read_manifest(run_dir)
    status = {}
    root = run_dir.resolve()
    for rel, digest in manifest["files"].items():
        p = (run_dir / rel)
        if not p.resolve().is_relative_to(root):
            raise BundleError(f"{run_dir / MANIFEST}: file entry {rel!r} points outside the run folder; "
                              "re-copy the run folder or retrain")
        if not p.is_file():
            status[rel] = "missing"
        else:
            status[rel] = "ok" if sha256_file(p) == digest else "changed"
    return status


def verify_bundle(run_dir: str | Path) -> dict[str, Any]:
    """Check every file listed in ``manifest.json`` against its SHA-256 and return the manifest.

    Raises BundleError naming the first missing or changed file. Files not listed (e.g. exports written later) are
    ignored: nothing in the folder is ever executed or unpickled, only hashed.
    """
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    _check_format(run_dir / MANIFEST, manifest.get("bundle_format"))
    missing_core = [f for f in REQUIRED_FILES if f not in manifest["files"]]
    if missing_core:
        raise BundleError(f"{run_dir / MANIFEST} does not list {', '.join(missing_core)}; re-copy the run folder or retrain")
    status = check_files(run_dir, manifest)
    for rel, state in status.items():
        if state == "missing":
            raise BundleError(f"{run_dir / rel} is missing but listed in manifest.json (incomplete bundle); "
                              "re-copy the whole run folder or retrain")
        if state == "changed":
            raise BundleError(f"{run_dir / rel}: SHA-256 does not match manifest.json (file changed or corrupted); "
                              "re-copy the run folder or retrain")
    log.debug("verified %d files in %s", len(status), run_dir)
    return manifest


def split_headline(entry: dict[str, Any]) -> dict[str, Any]:
    """The headline metrics of one split's entry in ``metrics.json``: at the run's threshold (``at_threshold``), else
    at 0.5 (``at_0.5``), else the multi-class set (``metrics``), else the entry itself (as training writes it)."""
    return entry.get("at_threshold") or entry.get("at_0.5") or entry.get("metrics") or entry


def describe_run(run: str | Path) -> dict[str, Any]:
    """Everything ``biolens info`` shows: task, model, classes, threshold, contract, versions, provenance, a metrics
    summary and the checksum status of every listed file (computed, never raised)."""
    run_dir = check_run_dir(run)
    try:
        contract = json.loads((run_dir / "contract.json").read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BundleError(f"{run_dir / 'contract.json'}: not valid JSON ({e}); restore it from the original run") from None
    if not isinstance(contract, dict):
        raise BundleError(f"{run_dir / 'contract.json'}: expected a JSON object; restore it from the original run")
    config = read_yaml(run_dir / "config.yaml")
    model = config.get("model") or {}
    try:
        manifest = read_manifest(run_dir)
        status = check_files(run_dir, manifest)
        problems = {k: v for k, v in status.items() if v != "ok"}
        checks = {"status": "ok" if not problems else "failed", "files": len(status), "problems": problems}
    except BundleError as e:
        manifest, checks = {}, {"status": "unverifiable", "files": 0, "problems": {}, "error": str(e)}
    metrics = {}
    if (run_dir / "metrics.json").is_file():
        try:
            metrics = json.loads((run_dir / "metrics.json").read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            metrics = {}  # its checksum status says what happened to it
        if not isinstance(metrics, dict):
            metrics = {}
    summary: dict[str, Any] = {}
    for split in ("val", "test"):
        m = split_headline(metrics.get(split) or {})
        picked = {k: m[k] for k in ("accuracy", "balanced_accuracy", "mcc", "roc_auc", "pr_auc", "sensitivity",
                                    "specificity", "macro_f1", "pearson", "spearman", "r2", "mae", "rmse",
                                    "micro_roc_auc", "subset_accuracy", "hamming_loss")
                  if isinstance(m.get(k), (int, float)) and not isinstance(m.get(k), bool)}
        if picked:
            summary[split] = picked
    return {
        "run": str(run_dir),
        "task": contract.get("task"),
        "target_type": contract.get("target_type", "classification"),
        "model": model.get("name"),
        "model_params": model.get("params", {}),
        "classes": contract.get("class_names"),
        "positive_class": contract.get("positive_class"),
        "threshold": contract.get("threshold"),
        "temperature": contract.get("temperature"),
        "contract": contract,
        "bundle_format": manifest.get("bundle_format"),
        "created": manifest.get("created"),
        "updated": manifest.get("updated"),
        "versions": {k: manifest.get(k) for k in ("biolens", "torch", "numpy", "python")},
        "git_commit": manifest.get("git_commit"),
        "git_dirty": manifest.get("git_dirty"),
        "dataset_fingerprint": manifest.get("dataset_fingerprint"),
        "hardware": manifest.get("hardware") or {k: manifest.get(k) for k in ("platform", "cpu_count", "cuda")},
        "metrics": summary,
        "best_epoch": metrics.get("best_epoch"),
        "checksums": checks,
    }
