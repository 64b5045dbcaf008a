"""Take the import files an earlier version kept under the public MEDIA_ROOT out of it.

A finished job's file is deleted (it would be now); the file of a job that has yet to run moves to
private storage under a random name. Rows whose file is not in the public storage (moved already,
or lost) are left as they are, so the migration can run again. Not atomic: each row is updated
on its own, right after its file was copied and before the public copy is deleted.
"""

import secrets

from django.core.files.storage import storages
from django.db import migrations

FINISHED = ("done", "failed")


def move_import_files(apps, schema_editor):
    ImportJob = apps.get_model("campaigns", "ImportJob")
    public, private = storages["default"], storages["private"]
    for job in ImportJob.objects.exclude(file="").iterator():
        old = job.file.name
        if not public.exists(old):
            continue
        if job.status in FINISHED:
            ImportJob.objects.filter(pk=job.pk).update(file="")
        else:
            with public.open(old, "rb") as source:
                new = private.save(f"imports/{secrets.token_hex(16)}", source)
            ImportJob.objects.filter(pk=job.pk).update(file=new)
        public.delete(old)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("campaigns", "0006_importjob_private_file"),
    ]

    operations = [
        migrations.RunPython(move_import_files, migrations.RunPython.noop),
    ]
