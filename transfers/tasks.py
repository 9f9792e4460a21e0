"""Imports: large files run here, with progress on the ImportJob.

The task names are the ones these tasks had in members (explicit `name=`): beat's stored
periodic task (loyalty_site/schedules.py) and messages already queued keep finding them."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings


# Longer limits than other tasks: a million rows take minutes. At the soft limit the job fails
# cleanly with a message (transfers.services); a hard kill leaves it to the sweeper, which gives
# up after the second start.
@shared_task(name="members.tasks.analyse_import", soft_time_limit=settings.LOYALTY_IMPORT_SOFT_TIME_LIMIT,
             time_limit=settings.LOYALTY_IMPORT_TIME_LIMIT)
def analyse_import(job_id: int) -> str:
    """The dry run of a large file (idempotent: a redelivered task finds the job analysed)."""
    from .services import import_job_analyse

    return import_job_analyse(job_id=job_id).status


@shared_task(name="members.tasks.run_import", soft_time_limit=settings.LOYALTY_IMPORT_SOFT_TIME_LIMIT,
             time_limit=settings.LOYALTY_IMPORT_TIME_LIMIT)
def run_import(job_id: int) -> str:
    """The confirmed import of a large file, in one transaction (a redelivery after a crash
    starts again from a clean state: the crashed run's transaction was rolled back)."""
    from .services import import_job_run

    return import_job_run(job_id=job_id).status


@shared_task(name="members.tasks.resume_stalled_imports")
def resume_stalled_imports() -> list[int]:
    from .services import import_jobs_resume_stalled

    return import_jobs_resume_stalled()
