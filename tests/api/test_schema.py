"""The OpenAPI schema: valid without warnings, an example for every operation, docs from local files.

The API's conformance to it is checked by schemathesis in test_schemathesis.py."""

from django.core.management import call_command


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




def test_docs_load_nothing_from_the_internet_and_lead_back_to_the_console(client):
    for url in ("/api/v1/redoc/", "/api/v1/docs/"):
        response = client.get(url)
        page = response.content.decode()
        assert "fonts.googleapis" not in page and "fonts.gstatic" not in page
        assert 'href="/"' in page and 'id="docs-back"' in page  # back to the console
        # ReDoc's bundle fetches its logo from cdn.redoc.ly: the browser is told to load from here only
        policy = response["Content-Security-Policy"]
        assert "default-src 'self'" in policy and "img-src 'self' data:" in policy and "https:" not in policy
    assert '"validatorUrl": null' in client.get("/api/v1/docs/").content.decode()  # no validator.swagger.io badge
