from __future__ import annotations

from celery import shared_task


@shared_task(name="loyalty_site.tasks.refresh_dashboard", ignore_result=True)
def refresh_dashboard() -> None:
    from .dashboard import compute_figures

    compute_figures()
