"""Celery tasks of the campaigns app. Each loads by id and calls a service."""

from celery import shared_task


@shared_task(name="campaigns.import_contacts", acks_late=True)
def import_contacts(job_id: int) -> None:
    """Run a contact import (campaigns.imports.import_job_run); a second delivery finds it claimed."""
    from campaigns.imports import import_job_run
    from campaigns.models import ImportJob

    job = ImportJob.objects.filter(pk=job_id).first()
    if job is not None:
        import_job_run(job)


@shared_task(name="campaigns.sweep_import_files")
def sweep_import_files() -> int:
    """Delete import files that outlived their job (campaigns.imports.import_files_sweep), hourly."""
    from campaigns.imports import import_files_sweep

    return import_files_sweep()
