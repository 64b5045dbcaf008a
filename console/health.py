"""/healthz and /readyz for load balancers and orchestrators: JSON, no sign-in, never cached."""

from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from messaging.health import readiness


@never_cache
@require_GET
def healthz(request):
    """The process answers (no database or broker touched): restart it if this fails."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request):
    """The deployment can take and finish work: send traffic here only while this answers 200."""
    report = readiness()
    return JsonResponse(report, status=200 if report["ready"] else 503)
