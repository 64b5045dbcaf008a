"""Private files stay private (security issue 14, item 2).

Contact import files and inbound files live in private storage (``PRIVATE_MEDIA_ROOT``, not below
``MEDIA_ROOT``) under random names, leave only through views that check the member, as attachments
with ``nosniff``; import files are deleted when their job ends and swept when abandoned; public
campaign media is served with headers that keep it from running script in the console's origin.
Inbound files are fetched over real HTTP from a server on 127.0.0.1 (port 0).
"""

from __future__ import annotations

import datetime
import http.server
import importlib
import io
import os
import threading

import pytest
from django.apps import apps as django_apps
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from accounts.models import Role
from campaigns.imports import import_files_sweep, import_job_create, import_job_run, import_job_set_mapping
from campaigns.media import display_url, store_media
from campaigns.models import Contact, ImportJob, ImportStatus, ListPurpose
from messaging.gateways.base import NormalizedEvent
from messaging.inbound_media import inbound_media_fetch
from messaging.inbox import inbound_apply
from messaging.models import ConversationMessage, MediaStatus
from tests.accounts.factories import (
    GatewayAccountFactory,
    OrganizationFactory,
    UserFactory,
    approved_account,
    member,
)
from tests.campaigns.factories import ContactListFactory

pytestmark = pytest.mark.django_db

CSV = "電話番号,氏名\r\n090-1234-5678,山田 太郎\r\n080-2222-3333,佐藤 花子\r\n".encode()
HTML = b"<html><script>alert(document.cookie)</script></html>"


@pytest.fixture
def roots(settings, tmp_path):
    """Fresh public and private roots for the test: (MEDIA_ROOT, PRIVATE_MEDIA_ROOT)."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"
    return settings.MEDIA_ROOT, settings.PRIVATE_MEDIA_ROOT


def files_under(root) -> list[str]:
    return sorted(
        os.path.relpath(os.path.join(folder, name), root) for folder, _dirs, names in os.walk(root) for name in names
    )


@pytest.fixture
def organization():
    return OrganizationFactory()


def new_import(organization, data=CSV, name="contacts.csv"):
    contact_list = ContactListFactory(organization=organization, purpose=ListPurpose.TRANSACTION)
    return import_job_create(organization, UserFactory(), SimpleUploadedFile(name, data), contact_list)


# --- import files ---------------------------------------------------------------------------------


def test_private_files_import_file_is_private_under_a_random_name(roots, organization):
    public, private = roots
    job = new_import(organization)

    assert files_under(public) == []  # nothing under the public media folder
    assert files_under(private) == [job.file.name]
    assert job.file.name.startswith("imports/") and "contacts" not in job.file.name and "." not in job.file.name
    assert len(job.file.name.split("/")[1]) == 32  # 128 random bits
    other = new_import(organization)
    assert other.file.name != job.file.name
    with pytest.raises(ValueError):
        job.file.url  # no URL serves private storage  # noqa: B018


def test_private_files_import_file_is_deleted_when_the_job_ends(roots, organization):
    _public, private = roots
    job = new_import(organization)
    import_job_set_mapping(job, job.mapping, {})

    job = import_job_run(job)

    assert job.status == ImportStatus.DONE and job.created_count == 2
    assert job.file.name == "" and files_under(private) == []
    assert Contact.objects.filter(organization=organization).count() == 2


def test_private_files_import_file_is_deleted_when_the_job_fails(roots, organization, monkeypatch):
    _public, private = roots
    job = new_import(organization)
    import_job_set_mapping(job, job.mapping, {})
    monkeypatch.setattr("campaigns.imports.contacts_upsert", lambda *a, **k: 1 / 0)

    job = import_job_run(job)

    assert job.status == ImportStatus.FAILED
    assert job.file.name == "" and files_under(private) == []


def test_private_files_sweep_deletes_abandoned_and_orphaned_import_files(roots, organization, settings):
    _public, private = roots
    settings.IMPORT_FILE_MAX_AGE_HOURS = 24
    old = timezone.now() - datetime.timedelta(hours=25)
    abandoned = new_import(organization)  # never mapped
    ImportJob.objects.filter(pk=abandoned.pk).update(created_at=old)
    recent = new_import(organization)  # still being mapped: kept
    orphan_old = private / "imports" / ("a" * 32)
    orphan_old.write_bytes(CSV)
    os.utime(orphan_old, (old.timestamp(), old.timestamp()))
    orphan_new = private / "imports" / ("b" * 32)  # a moment old: may be an upload in progress
    orphan_new.write_bytes(CSV)

    assert import_files_sweep() == 2

    abandoned.refresh_from_db()
    assert abandoned.status == ImportStatus.FAILED and abandoned.file.name == ""
    assert "deleted" in abandoned.failure or "削除" in abandoned.failure
    assert sorted(files_under(private)) == sorted([recent.file.name, f"imports/{'b' * 32}"])


# --- inbound files --------------------------------------------------------------------------------


class FileServer:
    """A real HTTP server on 127.0.0.1 answering every GET with ``body`` as ``content_type``."""

    def __init__(self, body: bytes, content_type: str):
        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receive_file(organization):
    """Receive and fetch one inbound file (bytes, declared type, URL path) through a gateway account
    whose host is the local file server; returns the stored ConversationMessage."""
    servers = []
    count = iter(range(1, 1000))

    def receive(body: bytes, declared: str, path: str) -> ConversationMessage:
        server = FileServer(body, declared)
        servers.append(server)
        gateway = GatewayAccountFactory(organization=organization, base_url=server.url)
        approved_account(organization, rcs_gateway=gateway)
        event = NormalizedEvent(
            provider="rbm", event_id=f"evt-{next(count)}", kind="inbound_file", channel="rcs",
            phone="+819011112222", file_url=f"{server.url}{path}", file_mime=declared, gateway_id=gateway.pk,
        )
        (message,) = inbound_apply([event])
        assert inbound_media_fetch(message.pk) == MediaStatus.STORED
        message.refresh_from_db()
        return message

    yield receive
    for server in servers:
        server.close()


def png(color=(20, 120, 200)) -> bytes:
    image = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(image, "PNG")
    return image.getvalue()


def test_private_files_inbound_html_is_kept_as_opaque_bytes_under_a_random_name(roots, receive_file):
    public, private = roots
    first = receive_file(HTML, "text/html", "/page.html")
    second = receive_file(HTML, "text/html", "/page.html")  # the same bytes again

    assert files_under(public) == []
    assert sorted(files_under(private)) == sorted([first.file.name, second.file.name])
    for message in (first, second):
        assert message.file.name.startswith("inbox/") and "." not in message.file.name  # no sender extension
        assert message.file_mime == "text/html" and not message.file_is_image  # the declared type: in the row only
        with message.file.open("rb") as stored:
            assert stored.read() == HTML  # opaque: kept as sent
    assert first.file.name != second.file.name  # not derived from the bytes, so not computable


def test_private_files_inbound_files_leave_only_as_attachments_for_members_of_the_organization(
    roots, organization, receive_file, client
):
    html = receive_file(HTML, "text/html", "/x.svg")
    photo = receive_file(png(), "image/png", "/photo.png")
    assert photo.file_is_image and photo.file_mime == "image/jpeg"  # re-encoded

    client.force_login(member(organization, Role.OPERATOR))
    answer = client.get(reverse("messaging:inbox_media", args=[html.pk]))
    assert answer.status_code == 200
    assert answer["Content-Type"] == "application/octet-stream"
    assert answer["Content-Disposition"] == f'attachment; filename="received-{html.pk}.bin"'
    assert answer["X-Content-Type-Options"] == "nosniff" and "sandbox" in answer["Content-Security-Policy"]
    assert b"".join(answer.streaming_content) == HTML

    image = client.get(reverse("messaging:inbox_media", args=[photo.pk]))
    assert image.status_code == 200 and image["Content-Type"] == "image/jpeg"
    assert image["Content-Disposition"].startswith("attachment;")  # an <img> still shows it
    assert image["X-Content-Type-Options"] == "nosniff"
    page = client.get(reverse("messaging:inbox_conversation", args=[photo.conversation_id])).content.decode()
    assert f'<img src="{reverse("messaging:inbox_media", args=[photo.pk])}"' in page

    client.force_login(member(organization, Role.VIEWER))  # a role without the inbox
    assert client.get(reverse("messaging:inbox_media", args=[html.pk])).status_code == 403
    client.force_login(member(OrganizationFactory(), Role.OWNER))  # another organization
    assert client.get(reverse("messaging:inbox_media", args=[html.pk])).status_code == 404


# --- public campaign media ------------------------------------------------------------------------


def test_private_files_public_media_is_served_with_guard_headers_and_nothing_else_is(roots, organization, client):
    public, _private = roots
    stored = store_media(SimpleUploadedFile("x.png", png()), organization)
    assert len(stored.name.rsplit("/", 1)[1].split(".")[0]) >= 24  # unguessable

    answer = client.get(display_url(stored.url))  # no login: carriers fetch it
    assert answer.status_code == 200 and answer["Content-Type"] == "image/png"
    assert answer["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in answer["Content-Security-Policy"] and "default-src 'none'" in answer["Content-Security-Policy"]

    # A file an older version left under the public folder is not served from there.
    (public / "imports" / "2026" / "11").mkdir(parents=True)
    (public / "imports" / "2026" / "11" / "contacts.csv").write_bytes(CSV)
    assert client.get("/media/imports/2026/11/contacts.csv").status_code == 404
    assert client.get("/media/media/../imports/2026/11/contacts.csv").status_code == 404


# --- files an earlier version left in public storage ------------------------------------------------


def test_private_files_migrations_move_old_files_out_of_the_public_folder(roots, organization, receive_file):
    public, private = roots
    old_imports = importlib.import_module("campaigns.migrations.0007_move_import_files_to_private_storage")
    old_inbound = importlib.import_module("messaging.migrations.0015_move_inbound_files_to_private_storage")
    (public / "imports" / "2026" / "11").mkdir(parents=True)
    (public / "inbox" / "2026" / "11").mkdir(parents=True)
    waiting = new_import(organization)
    finished = new_import(organization)
    for job, name, status in ((waiting, "contacts.csv", ImportStatus.MAPPING), (finished, "contacts_x.csv",
                                                                                ImportStatus.DONE)):
        (public / "imports" / "2026" / "11" / name).write_bytes(CSV)
        job.file.storage.delete(job.file.name)
        ImportJob.objects.filter(pk=job.pk).update(file=f"imports/2026/11/{name}", status=status)
    message = receive_file(HTML, "text/html", "/x.html")
    message.file.storage.delete(message.file.name)
    (public / "inbox" / "2026" / "11" / "0123abcd.html").write_bytes(HTML)
    ConversationMessage.objects.filter(pk=message.pk).update(file="inbox/2026/11/0123abcd.html",
                                                             file_mime="application/octet-stream")

    old_imports.move_import_files(django_apps, None)
    old_inbound.move_inbound_files(django_apps, None)
    old_inbound.move_inbound_files(django_apps, None)  # a second run changes nothing

    assert files_under(public) == []
    waiting.refresh_from_db()
    finished.refresh_from_db()
    message.refresh_from_db()
    assert finished.file.name == ""
    assert waiting.file.name.startswith("imports/") and "." not in waiting.file.name
    assert message.file.name.startswith("inbox/") and "." not in message.file.name and not message.file_is_image
    assert sorted(files_under(private)) == sorted([waiting.file.name, message.file.name])
    with message.file.open("rb") as moved:
        assert moved.read() == HTML
