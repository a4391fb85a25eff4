"""Provenance in manifest.json: the git commit and dirty flag of the user's project (the working directory's
repository), biolens's own commit under its own key, and the biolens version."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from biolens._version import __version__
from biolens.bundle import environment, git_state, write_manifest

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args], cwd=repo,
                          check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    git(root, "init", "-q")
    (root / "train.py").write_text("print('hi')\n")
    git(root, "add", "train.py")
    git(root, "commit", "-q", "-m", "first")
    return root


def test_git_state_of_a_clean_and_a_dirty_repository(repo):
    head = git(repo, "rev-parse", "HEAD")
    assert git_state(repo) == {"commit": head, "dirty": False}
    (repo / "runs").mkdir()
    (repo / "runs" / "new.txt").write_text("untracked files (run folders) do not make it dirty")
    assert git_state(repo)["dirty"] is False
    (repo / "train.py").write_text("print('changed')\n")
    assert git_state(repo) == {"commit": head, "dirty": True}
    assert git_state(repo / "runs")["commit"] == head  # any folder inside the repository


def test_no_repository(tmp_path):
    assert git_state(tmp_path) == {"commit": None, "dirty": None}


def test_manifest_records_the_working_directory_s_commit(repo, monkeypatch):
    run = repo / "runs" / "x"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("data: {path: x}\n")
    monkeypatch.chdir(repo)
    (repo / "train.py").write_text("print('uncommitted')\n")
    manifest = write_manifest(run)
    saved = json.loads((run / "manifest.json").read_text())
    assert saved == manifest
    assert saved["git_commit"] == git(repo, "rev-parse", "HEAD") and saved["git_dirty"] is True
    assert saved["biolens"] == __version__
    assert saved["biolens_git_commit"] != saved["git_commit"]  # never the user's commit passed off as biolens's


def test_biolens_commit_only_from_its_own_checkout(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = environment()
    assert env["git_commit"] is None and env["git_dirty"] is None
    src = Path(__file__).resolve().parents[2] / "src" / "biolens"
    tracked = subprocess.run(["git", "ls-files", "--error-unmatch", "bundle.py"], cwd=src, capture_output=True)
    if tracked.returncode == 0:
        assert env["biolens_git_commit"] == git(src, "rev-parse", "HEAD")
    else:
        assert env["biolens_git_commit"] is None
