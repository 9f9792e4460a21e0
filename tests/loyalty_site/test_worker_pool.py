"""The worker's pool: re-registering with the event loop after a reconnect survives a pool process
that exited just before (the fault test in test_faults_broker.py shows the whole story)."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest
from celery.concurrency import asynpool
from kombu.asynchronous import Hub

from loyalty_site.celery import app
from loyalty_site.workerpool import AsynPool, TaskPool


@pytest.fixture
def hub():
    hub = Hub()
    yield hub
    hub.close()


def _exited_and_untracked_process():
    # What AsynPool._untrack_child_process leaves behind for an exited process.
    return SimpleNamespace(_sentinel_poll=None)


def _unstarted(pool_class):
    return pool_class.__new__(pool_class)  # no processes forked: only the registration is tested


def test_celerys_own_pool_fails_to_reregister_an_exited_process(hub):
    with pytest.raises(ValueError, match="file descriptor is None"):
        _unstarted(asynpool.AsynPool)._track_child_process(_exited_and_untracked_process(), hub)


def test_our_pool_skips_an_exited_process_and_still_watches_a_live_one(hub):
    read_end, write_end = os.pipe()
    try:
        live = SimpleNamespace(_sentinel_poll=read_end)
        pool = _unstarted(AsynPool)
        pool._track_child_process(_exited_and_untracked_process(), hub)
        pool._track_child_process(live, hub)
        assert read_end in hub.readers and None not in hub.readers
    finally:
        os.close(read_end)
        os.close(write_end)


def test_workers_use_our_pool():
    from celery.concurrency import get_implementation

    assert get_implementation(app.conf.worker_pool) is TaskPool
