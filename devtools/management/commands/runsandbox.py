"""``python manage.py runsandbox [--port N]``: the sandbox carrier (RBM and CM.com formats).

At start-up it reads the gateway accounts whose base URL points at this sandbox and registers them,
so their webhooks come back to ``{PUBLIC_BASE_URL}/messaging/webhooks/…``; an unknown token later
makes it read them again (accounts created after start-up). Gateways can also be registered at run
time through the admin API (POST /_sandbox/gateways), which is what the tests do (``--no-db``).
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection

from accounts.models import GatewayAccount, GatewayKind
from devtools.sandbox_setup import sandbox_webhook_url
from sandbox.carrier import Registration
from sandbox.server import serve

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}


def registrations_from_db(port: int, public_base_url: str) -> list[Registration]:
    """Registrations for every gateway account whose base URL is this sandbox."""
    found = []
    for account in GatewayAccount.objects.all().only("id", "kind", "base_url", "credentials"):
        parts = urlsplit(account.base_url)
        if parts.hostname not in LOCAL_HOSTS or (parts.port or 80) != port:
            continue
        credentials = account.credentials or {}
        if account.kind == GatewayKind.RBM:
            if not credentials.get("bearer_token") or not credentials.get("client_token"):
                continue
            found.append(
                Registration(
                    kind="rbm",
                    gateway_id=account.id,
                    agent_id=str(credentials.get("agent_id", "")),
                    bearer_token=str(credentials["bearer_token"]),
                    client_token=str(credentials["client_token"]),
                    webhook_url=sandbox_webhook_url(account, public_base_url),
                )
            )
        elif account.kind == GatewayKind.CM:
            if not credentials.get("product_token"):
                continue
            secret = str(credentials.get("callback_secret", ""))
            found.append(
                Registration(
                    kind="cm",
                    gateway_id=account.id,
                    product_token=str(credentials["product_token"]),
                    callback_secret=secret,
                    webhook_url=sandbox_webhook_url(account, public_base_url),
                )
            )
    return found


class Command(BaseCommand):
    help = "Run the sandbox carrier (RBM REST v1 and CM.com Business Messaging formats)."

    def add_arguments(self, parser):
        default_port = urlsplit(settings.SANDBOX_URL).port or 8025
        parser.add_argument("--port", type=int, default=default_port)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--public-base-url", default=settings.PUBLIC_BASE_URL,
                            help="Where the console receives webhooks.")
        parser.add_argument("--no-db", action="store_true", help="Do not read gateway accounts from the database.")
        parser.add_argument("--config", default="",
                            help='Initial admin config as JSON, e.g. \'{"latencies_ms": {"read": [1000, 5000]}}\'.')
        parser.add_argument("--log-level", default="warning")

    def handle(self, *args, **options):
        port = options["port"]
        registrations: list[Registration] = []
        if not options["no_db"]:
            try:
                registrations = registrations_from_db(port, options["public_base_url"])
                connection.close()
            except DatabaseError as error:
                self.stderr.write(f"Gateway accounts not read from the database: {error.__class__.__name__}")
        try:
            config = json.loads(options["config"]) if options["config"] else None
        except ValueError as error:
            raise CommandError(f"--config is not JSON: {error}") from None
        self.stdout.write(
            f"Sandbox carrier on http://{options['host']}:{port}/ "
            f"({len(registrations)} gateway account(s) registered; admin API under /_sandbox/)"
        )
        self.stdout.flush()
        reloader = None
        if not options["no_db"]:

            def reloader():
                try:
                    return registrations_from_db(port, options["public_base_url"])
                finally:
                    connection.close()  # this worker thread's own connection

        serve(options["host"], port, registrations, config, log_level=options["log_level"], reloader=reloader)
