"""Take the inbound files an earlier version kept under the public MEDIA_ROOT (named by a hash of
their bytes, with the sender's extension) out of it: each moves to private storage under a random
name, and a re-encoded image (stored as image/jpeg or image/png) is marked ``file_is_image``.

Rows whose file is not in the public storage (moved already, or lost) are left as they are, so the
migration can run again. Not atomic: each row is updated on its own, right after its file was
copied and before the public copy is deleted.
"""

import secrets

from django.core.files.storage import storages
from django.db import migrations

REENCODED_IMAGE_TYPES = ("image/jpeg", "image/png")


def move_inbound_files(apps, schema_editor):
    ConversationMessage = apps.get_model("messaging", "ConversationMessage")
    public, private = storages["default"], storages["private"]
    for message in ConversationMessage.objects.exclude(file="").iterator():
        old = message.file.name
        if not public.exists(old):
            continue
        with public.open(old, "rb") as source:
            new = private.save(f"inbox/{secrets.token_hex(16)}", source)
        ConversationMessage.objects.filter(pk=message.pk).update(
            file=new, file_is_image=message.file_mime in REENCODED_IMAGE_TYPES
        )
        public.delete(old)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("messaging", "0014_inbound_file_private"),
    ]

    operations = [
        migrations.RunPython(move_inbound_files, migrations.RunPython.noop),
    ]
