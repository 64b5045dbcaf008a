"""Public media under ``MEDIA_URL``: campaign media (what carriers fetch) and official-account logos.

Only those two folders are served; anything else under ``MEDIA_ROOT`` (files an older version kept
there) answers 404. Every answer carries the guard headers of ``core.private_files``
(``nosniff`` and a sandboxing Content-Security-Policy), so a file here never runs script in the
console's origin, whatever its bytes.
"""

from django.conf import settings
from django.http import Http404
from django.views.decorators.http import require_safe
from django.views.static import serve

from core.private_files import harden_media_response

PUBLIC_MEDIA_FOLDERS = ("media/", "logos/")


@require_safe
def public_media(request, path):
    if not path.startswith(PUBLIC_MEDIA_FOLDERS) or ".." in path.split("/"):
        raise Http404
    return harden_media_response(serve(request, path, document_root=settings.MEDIA_ROOT))
