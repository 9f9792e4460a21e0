"""Stalled background work is visible in the console where staff look at it (core/stalls.py and each app's stalls.py):
on the campaign's page and the campaign list, on the import job's page, and on the webhook
delivery list and page; not only in /healthz."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connections
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Campaign, Message
from core.heartbeat import WORKER_HEARTBEAT_KEY
from tests import factories
from transfers import services as imports
from transfers.models import ImportJob

STALLED = "stalled"


@pytest.fixture
def staff(client, db):
    client.force_login(factories.UserFactory(is_staff=True, is_superuser=True))
    return client


def _ago(minutes: float):
    return timezone.now() - timedelta(minutes=minutes)


def _sending_campaign(*, progress_minutes_ago: float, name: str) -> Campaign:
    campaign = factories.CampaignFactory(name=name, status=Campaign.Status.SENDING, started_at=_ago(60),
                                         prepared_at=_ago(60), last_progress_at=_ago(progress_minutes_ago))
    factories.MessageFactory(campaign=campaign, status=Message.Status.QUEUED)
    return campaign


def _page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def test_a_campaign_without_progress_shows_a_stalled_banner_on_its_page_and_in_the_list(staff, tiers):
    stuck = _sending_campaign(progress_minutes_ago=settings.LOYALTY_STALLED_AFTER_MINUTES + 1, name="Herbstaktion")
    moving = _sending_campaign(progress_minutes_ago=1, name="Winteraktion")

    page = _page(staff, reverse("admin:campaigns_campaign_change", args=[stuck.pk]))
    assert "Sending is stalled: 1 message has been waiting without progress" in page
    assert STALLED not in _page(staff, reverse("admin:campaigns_campaign_change", args=[moving.pk]))
    listing = _page(staff, reverse("admin:campaigns_campaign_changelist"))
    assert "Stalled sending" in listing and "Herbstaktion" in listing.split("Stalled sending")[1].split("</")[0]
    assert "Winteraktion" not in listing.split("Stalled sending")[1].split("</")[0]


def test_a_finished_campaign_is_never_stalled(staff, tiers):
    done = factories.CampaignFactory(status=Campaign.Status.DONE, started_at=_ago(60), prepared_at=_ago(60),
                                     last_progress_at=_ago(60))
    factories.MessageFactory(campaign=done, status=Message.Status.SENT)
    assert STALLED not in _page(staff, reverse("admin:campaigns_campaign_change", args=[done.pk]))


def test_a_stale_worker_heartbeat_marks_waiting_work_stalled_at_once(staff, tiers):
    campaign = _sending_campaign(progress_minutes_ago=1, name="Sofortaktion")
    cache.set(WORKER_HEARTBEAT_KEY, time.time() - 300, timeout=None)
    page = _page(staff, reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    assert "The Celery worker has not answered for" in page


def test_an_import_nobody_works_on_shows_a_stalled_banner(staff):
    job = factories.ImportJobFactory(status=ImportJob.Status.PENDING,
                                     created_at=_ago(settings.LOYALTY_STALLED_AFTER_MINUTES + 1))
    fresh = factories.ImportJobFactory(status=ImportJob.Status.PENDING, created_at=_ago(1))
    page = _page(staff, reverse("admin:transfers_importjob_change", args=[job.pk]))
    assert 'data-testid="stalled"' in page and "This import is stalled" in page
    assert 'data-testid="stalled"' not in _page(staff, reverse("admin:transfers_importjob_change", args=[fresh.pk]))


@pytest.mark.django_db(transaction=True)
def test_a_long_import_a_worker_is_running_is_not_stalled(client):
    client.force_login(factories.UserFactory(is_staff=True, is_superuser=True))
    job = factories.ImportJobFactory(status=ImportJob.Status.IMPORTING, created_at=_ago(60), confirmed_at=_ago(60))
    worker = connections.create_connection("default")  # the worker's session, holding the import's lock
    try:
        with worker.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s, %s)", [imports.IMPORT_LOCK, job.pk])
        assert 'data-testid="stalled"' not in _page(client, reverse("admin:transfers_importjob_change", args=[job.pk]))
    finally:
        worker.close()
    assert 'data-testid="stalled"' in _page(client, reverse("admin:transfers_importjob_change", args=[job.pk]))


def test_overdue_webhook_deliveries_show_a_banner_on_the_list_and_their_page(staff):
    overdue = factories.WebhookDeliveryFactory(created_at=_ago(settings.LOYALTY_STALLED_AFTER_MINUTES + 1))
    retrying = factories.WebhookDeliveryFactory(created_at=_ago(60), attempts=5, last_attempt_at=_ago(1))
    factories.WebhookDeliveryFactory(created_at=_ago(60), status="delivered", attempts=1, delivered_at=_ago(59))

    listing = _page(staff, reverse("admin:partners_webhookdelivery_changelist"))
    assert "1 webhook delivery is stalled" in listing
    assert "This delivery is stalled" in _page(staff, reverse("admin:partners_webhookdelivery_change",
                                                              args=[overdue.pk]))
    assert STALLED not in _page(staff, reverse("admin:partners_webhookdelivery_change", args=[retrying.pk]))
