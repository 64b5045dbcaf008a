"""/metrics for Prometheus: the families of ``messaging.metrics``, for allowed networks or a token only.

A client is let in when its address (REMOTE_ADDR: the peer, never a forwarded header a client could
write) is in ``METRICS_ALLOWED_NETWORKS`` (default loopback), or when it presents
``Authorization: Bearer <METRICS_TOKEN>`` (compared in constant time; no token configured = no
token accepted). Anyone else gets 404, as if there were nothing here.
"""

import hmac
import ipaddress

from django.conf import settings
from django.http import Http404, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from messaging.metrics import PlusMessageCollector


def _allowed_networks():
    return [ipaddress.ip_network(network.strip(), strict=False) for network in settings.METRICS_ALLOWED_NETWORKS]


def metrics_allowed(request) -> bool:
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer ") and hmac.compare_digest(header[7:].encode(), token.encode()):
        return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in network for network in _allowed_networks())


@never_cache
@require_GET
def metrics(request):
    if not metrics_allowed(request):
        raise Http404
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PlusMessageCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
