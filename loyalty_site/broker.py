"""kombu's Redis transport, with one fix: a worker survives Redis going away while it runs a task.

With kombu 5.7 / Celery 5.7, when the worker loses Redis while a late-acknowledged task runs, the
consumer drops the transport (`Connection.collect`) and reconnects with a new one; but the old
channel is still used afterwards: closing it hands the unacknowledged message back to Redis, and
the running task's acknowledgement goes to it when the task ends. Both ask the dropped transport
for Redis' address and raise AttributeError (`'NoneType' object has no attribute 'hostname'`),
which Celery treats as an unrecoverable error: the worker process exits ("Unrecoverable error" in
its log) instead of going on. Here the old channel raises a connection error instead, which
kombu and Celery expect and handle (logged; the worker keeps consuming on its new connection).
tests/loyalty_site/test_faults_broker.py kills Redis under running work and proves the worker goes on.

Nothing is lost by that: a message whose acknowledgement failed is still in Redis among the
unacknowledged messages and returns to the queue after the visibility timeout (every task is
idempotent), and the database rows behind every task are swept by beat anyway (see
loyalty_site/celery.py).

Used for redis:// broker URLs (settings: CELERY_BROKER_TRANSPORT); amqp:// is not affected.
"""

from __future__ import annotations

import redis as redis_client
from kombu.transport import redis


class Channel(redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> dict:
        if self.connection.client is None:  # a channel of a connection the consumer dropped
            raise redis_client.exceptions.ConnectionError("this channel's connection to Redis was closed")
        return super()._connparams(asynchronous=asynchronous)


class Transport(redis.Transport):
    Channel = Channel
