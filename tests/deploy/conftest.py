"""Fixtures for the deploy tests (the sequence run ``trained_run`` and the image run ``image_run`` are session
fixtures in tests/conftest.py)."""

from tests.conftest import TINY_IMAGE  # noqa: F401  (re-exported for the deploy tests)
