"""The OpenAPI schema: valid, with an example for every operation, and the API conforming to it.

schemathesis (pinned in the test extras) generates requests for every operation of the live
schema and checks each answer: no 5xx, a documented status code, content type, headers and body.
The number of examples per operation is kept small (SCHEMATHESIS_MAX_EXAMPLES, default 6) so the
whole suite stays within its time budget.
"""

import os

import pytest
import schemathesis
from django.core.management import call_command
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.models import ApiKey
from tests.api.conftest import ALL_SCOPES, Tenant

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "6"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]


def test_schema_validates_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))


def test_every_operation_has_an_example(client):
    import yaml

    schema = yaml.safe_load(client.get("/api/v1/schema/").content)
    missing = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            bodies = [operation.get("requestBody", {}), *operation.get("responses", {}).values()]
            if not any(media.get("examples") for body in bodies for media in body.get("content", {}).values()):
                missing.append(f"{method.upper()} {path}")
    assert not missing


def test_docs_are_served_from_local_static_files(client):
    swagger = client.get("/api/v1/docs/").content.decode()
    redoc = client.get("/api/v1/redoc/").content.decode()
    assert "drf_spectacular_sidecar" in swagger and "drf_spectacular_sidecar" in redoc
    assert "cdn" not in swagger.lower() and "cdn" not in redoc.lower()


@pytest.fixture
def api_schema(db, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"api_key": "100000/second"}}
    tenant = Tenant("fuzz")
    from tests.campaigns.factories import CampaignFactory, ContactFactory, ContactListFactory

    for _index in range(3):  # a few real ids (1, 2, 3 …) for the generated paths to hit
        ContactFactory(organization=tenant.organization)
        ContactListFactory(organization=tenant.organization)
        CampaignFactory(organization=tenant.organization, official_account=tenant.account, created_by=tenant.owner)
    _key, secret = ApiKey.generate(tenant.organization, "fuzz", ALL_SCOPES, created_by=tenant.owner)
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    from console.wsgi import application

    # In-process WSGI calls must keep the test's connection (and its transaction) open, as the test client does.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", application)
    schema.fuzz_secret = secret
    yield schema
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def test_api_conforms_to_its_schema(api_schema, _no_enqueue):
    """Every operation of the live schema, a few generated requests each (one Hypothesis run per operation)."""
    from hypothesis import given

    headers = {"Authorization": f"Bearer {api_schema.fuzz_secret}"}
    failures, operations, calls, statuses = [], 0, [0], {}
    from schemathesis import GenerationMode

    modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    for result, mode in [(result, mode) for result in api_schema.get_all_operations() for mode in modes]:
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy(generation_mode=mode))
        @hypothesis_settings(
            max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case):
            response = case.call_and_validate(headers=headers, checks=CHECKS)
            calls[0] += 1
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        try:
            run()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as error:  # noqa: BLE001 - schemathesis raises groups; collect all, report all
            failures.append(f"{mode.value} {operation.method.upper()} {operation.path}: {error}"[:3000])
    assert operations >= 30 and calls[0] >= operations, (operations, calls)
    assert any(200 <= status < 300 for status in statuses), statuses  # the generated requests reach the views
    if os.environ.get("SCHEMATHESIS_REPORT"):
        open(os.environ["SCHEMATHESIS_REPORT"], "w").write("\n\n".join(failures))
    assert not failures, "\n\n".join(failures)
