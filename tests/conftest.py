import pytest


@pytest.fixture(autouse=True)
def _english_by_default(settings):
    """Tests read messages and pages in English unless they ask for Japanese themselves
    (translation.override("ja"), or an Accept-Language / language cookie on the request)."""
    from django.utils import translation

    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield
