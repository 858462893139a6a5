"""Fuzzing every endpoint from the OpenAPI document with schemathesis, in-process, with
valid keys: no 5xx, and every answer (status, content type, headers, body) is one the
document declares. Schema-valid and schema-violating requests are both generated.

The document describes each field; some rules span fields or need the clock (a range
whose end is before its start, a timestamp in the future, cache tokens above input
tokens). So a schema-valid request may still be refused, with the statuses listed in
``CONFIG`` for that purpose, and a schema-violating batch may be partly stored (207):
each event is validated on its own.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.core.result import Ok

from tests.reliability.workload import soak

EXAMPLES = 1000 if soak() else 40
CONFIG = """
[[operations]]
include-path = "/api/v1/events"
checks.positive_data_acceptance.expected-statuses = [200, 207, 422]
checks.negative_data_rejection.expected-statuses = [207, 400, 413, 415, 422]

[[operations]]
include-path = "/v1/traces"
checks.positive_data_acceptance.expected-statuses = [200, 400]
checks.negative_data_rejection.expected-statuses = [400, 415]

[[operations]]
include-path = "/api/v1/integrations/litellm"
checks.positive_data_acceptance.expected-statuses = [200, 207, 400, 422]
checks.negative_data_rejection.expected-statuses = [207, 400, 413, 415, 422]

[[operations]]
include-path-regex = "^/api/v1/reports/(?!people/)"
checks.positive_data_acceptance.expected-statuses = [200, 400]

# Own prices: read with the key; changing them needs a signed-in admin (401 here).
[[operations]]
include-path-regex = "^/api/v1/prices"
checks.positive_data_acceptance.expected-statuses = [200, 401]
checks.negative_data_rejection.expected-statuses = [400, 401, 404]

# A schema-valid user id is most likely nobody's: 404.
[[operations]]
include-path-regex = "^/api/v1/reports/people/"
checks.positive_data_acceptance.expected-statuses = [200, 400, 404]
"""


Operation = schemathesis.APIOperation[Any, Any, Any, Any]


def _operations(app: FastAPI) -> list[Operation]:
    config = schemathesis.Config.from_str(CONFIG)
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app, config=config)
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # an operation the loader could not read
        operations.append(result.ok())
    return operations


def test_the_document_covers_every_api_endpoint(app: FastAPI) -> None:
    found = {(op.method.upper(), op.path) for op in _operations(app)}
    assert found == {
        ("POST", "/api/v1/events"),
        ("POST", "/v1/traces"),
        ("POST", "/api/v1/integrations/litellm"),
        ("GET", "/api/v1/reports/user-usage"),
        ("GET", "/api/v1/reports/usage-series"),
        ("GET", "/api/v1/reports/user-usage/export"),
        ("GET", "/api/v1/reports/model-usage"),
        ("GET", "/api/v1/prices"),
        ("PUT", "/api/v1/prices"),
        ("DELETE", "/api/v1/prices/{price_id}"),
        ("GET", "/api/v1/reports/team-usage"),
        ("GET", "/api/v1/reports/people/{user_id}"),
        ("GET", "/api/v1/reports/people/{user_id}/events"),
        ("GET", "/api/v1/budgets/check"),
    }


def _fuzz(operation: Operation, key: str, mode: GenerationMode) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=not soak(),  # the same cases on every run of make test
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def call(case: schemathesis.Case[Operation]) -> None:
        case.call_and_validate(headers={"Authorization": f"Bearer {key}"})

    call()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_endpoint_answers_within_its_schema(
    app: FastAPI, ingest_key: str, read_key: str, mode: GenerationMode
) -> None:
    for operation in _operations(app):
        if mode is GenerationMode.NEGATIVE and not _has_input(operation):
            continue  # nothing to send wrong (GET /api/v1/prices takes no parameter)
        _fuzz(operation, ingest_key if operation.method.upper() == "POST" else read_key, mode)


def _has_input(operation: Operation) -> bool:
    definition = operation.definition.raw
    return bool(definition.get("parameters") or definition.get("requestBody"))
