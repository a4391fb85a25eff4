"""Property-based tests of the HTTP API from its own OpenAPI schema (schemathesis + Hypothesis).

Every operation is called with generated valid and invalid inputs; the server must never answer 5xx, every
status it answers must be declared in the schema, and responses must match their declared content type and
schema. Runs in-process over ASGI (no sockets), bounded in examples so it stays a few seconds per operation.
(schemathesis's pytest loader does not run under pytest 9.2, so each operation's strategy is driven directly.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

from biolens.deploy.server import create_app

pytestmark = pytest.mark.slow  # trains the session's small runs once

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def run_schemathesis(app, max_examples: int = 40) -> list[str]:  # noqa: ANN001
    """Every operation of the app's schema, ``max_examples`` generated cases each; returns the operations run."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    seen = []
    for result in schema.get_all_operations():
        operation = result.ok()
        seen.append(f"{operation.method.upper()} {operation.path}")

        @given(case=operation.as_strategy())
        @settings(max_examples=max_examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case):  # noqa: ANN001
            case.call_and_validate(checks=CHECKS)

        check()
    return seen


def test_sequence_api_never_fails_and_keeps_its_contract(trained_run: Path):
    ops = run_schemathesis(create_app(trained_run, device="cpu"))
    assert {"POST /v1/predict", "GET /v1/health", "GET /v1/model"} <= set(ops)


def test_image_api_never_fails_and_keeps_its_contract(image_run):
    run, _ = image_run
    ops = run_schemathesis(create_app(run, device="cpu"), max_examples=25)
    assert "POST /v1/predict" in ops
