"""gunicorn's settings (loyalty_site/gunicorn_conf.py): sync workers, WEB_CONCURRENCY of them, and
each worker freezes what it loaded so full garbage collections skip it."""

from __future__ import annotations

import gc
import importlib

import pytest

from loyalty_site import gunicorn_conf


@pytest.fixture
def unfrozen():
    yield
    gc.unfreeze()


def test_a_worker_freezes_the_loaded_application_before_its_first_request(unfrozen):
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    gunicorn_conf.post_worker_init(worker=None)
    assert gc.get_freeze_count() > 10_000  # Django, DRF and our modules: skipped by every collection now
    assert gc.isenabled()  # requests' garbage is still collected


def test_workers_follow_web_concurrency(monkeypatch):
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    assert importlib.reload(gunicorn_conf).workers == 3
    monkeypatch.delenv("WEB_CONCURRENCY")
    assert importlib.reload(gunicorn_conf).workers == 4
    assert gunicorn_conf.worker_class == "sync"
