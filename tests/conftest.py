import pytest


@pytest.fixture(autouse=True)
def _english_by_default(settings):
    """Tests read messages in English unless they switch language themselves."""
    from django.utils import translation

    with translation.override("en"):
        yield
