"""The project package: settings, URLs, the Celery app, the ASGI and WSGI entry points."""

from config.celery import app as celery_app

__all__ = ["celery_app"]
