"""Private files (contact imports, files people send us) and the headers of public media.

Private files live in their own storage, ``PrivateStorage`` under ``PRIVATE_MEDIA_ROOT``, which is
not below ``MEDIA_ROOT`` and has no URL: ``url()`` refuses, so a template cannot link to one by
mistake. Their names are random (``random_name``) and carry no extension: nothing about the name
comes from the person who sent or uploaded the file, and nobody can compute it. The only way out
is a view that has checked the member's organization and role and answers with
``private_file_response``: an attachment, ``X-Content-Type-Options: nosniff`` and a sandboxing
Content-Security-Policy, so the bytes never run as a page of the console's origin.

``harden_media_response`` gives public campaign media (what carriers fetch, under ``MEDIA_URL``)
the same guard headers, so a file there cannot run script in the console's origin either.
"""

from __future__ import annotations

import os
import secrets

from django.conf import settings
from django.core.files.storage import FileSystemStorage, storages
from django.http import FileResponse

# Nothing served with these headers is a page: no script, no plugin, no form, a unique origin.
GUARD_CSP = "default-src 'none'; img-src 'self' data:; media-src 'self'; style-src 'unsafe-inline'; sandbox"


class PrivateStorage(FileSystemStorage):
    """File system storage under ``settings.PRIVATE_MEDIA_ROOT`` with no URL at all."""

    @property
    def base_location(self):
        return self._value_or_setting(self._location, settings.PRIVATE_MEDIA_ROOT)

    @property
    def location(self):
        return os.path.abspath(self.base_location)

    def url(self, name):
        raise ValueError("A private file has no URL; serve it through a view that checks the member.")


def private_storage():
    """The private storage (``STORAGES["private"]``); a callable, so FileFields resolve it late."""
    return storages["private"]


def random_name(folder: str) -> str:
    """A storage name nobody can guess or compute: ``<folder>/<128 random bits>``, no extension."""
    return f"{folder}/{secrets.token_hex(16)}"


def harden_media_response(response):
    """Add the headers that keep a served file from running as a page of our origin."""
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = GUARD_CSP
    response["Cross-Origin-Resource-Policy"] = "cross-origin"  # carriers and handsets fetch it
    return response


def private_file_response(stored_file, *, filename: str, content_type: str = "application/octet-stream"):
    """A private file as an attachment (``<img src>`` still shows an image sent so)."""
    response = FileResponse(stored_file.open("rb"), content_type=content_type, as_attachment=True, filename=filename)
    harden_media_response(response)
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    response["Cache-Control"] = "private, no-store"
    return response
