"""ASGI entry point: webhooks go to the batching receipt receiver, everything else to Django.

Run with ``uvicorn config.asgi:application`` (add ``--workers N`` to use more cores).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_application = get_asgi_application()

from messaging.receipt_server import receipt_receiver  # noqa: E402  (needs Django set up)

WEBHOOK_PREFIX = "/messaging/webhooks/"


async def application(scope, receive, send):
    if scope["type"] == "http" and scope["path"].startswith(WEBHOOK_PREFIX):
        await receipt_receiver(scope, receive, send)
    elif scope["type"] == "lifespan":
        await _lifespan(receive, send)
    else:
        await django_application(scope, receive, send)


async def _lifespan(receive, send):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
