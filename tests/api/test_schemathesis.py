"""schemathesis against the live schema, inside the suite: for every operation, generated requests
(valid and invalid data) with a key of every scope; each answer must be no 5xx and conform to the
schema (documented status code, content type, headers and body).

The number of examples per operation is kept small (SCHEMATHESIS_MAX_EXAMPLES, default 6: about 10 s)
so the whole suite stays within its time budget; raise it locally to search harder.
"""

import os

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="pip install schemathesis==4.32.5 (test extras)")

from django.core.signals import request_finished, request_started  # noqa: E402
from django.db import close_old_connections  # noqa: E402
from hypothesis import HealthCheck  # noqa: E402
from hypothesis import settings as hypothesis_settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.models import ApiKey  # noqa: E402
from config.wsgi import application  # noqa: E402
from tests.api.conftest import ALL_SCOPES, Tenant  # noqa: E402
from tests.campaigns.factories import CampaignFactory, ContactFactory, ContactListFactory  # noqa: E402

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "6"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]


@pytest.fixture
def api_schema(db, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"api_key": "100000/second"}}
    tenant = Tenant("fuzz")
    for _index in range(3):  # a few real ids (1, 2, 3 …) for the generated paths to hit
        ContactFactory(organization=tenant.organization)
        ContactListFactory(organization=tenant.organization)
        CampaignFactory(organization=tenant.organization, official_account=tenant.account, created_by=tenant.owner)
    _key, secret = ApiKey.generate(tenant.organization, "fuzz", ALL_SCOPES, created_by=tenant.owner)
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
