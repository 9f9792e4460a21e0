"""Django's PostgreSQL backend with a health check that costs no round trip (ENGINE "core.postgresql",
set in loyalty_site/settings/base.py for the primary and the replica).

With CONN_HEALTH_CHECKS, Django checks a kept connection before a request's first query by running
`SELECT 1`: a round trip on every request, a tenth of a balance read's time. A server only writes to
an idle connection to end it (a FATAL message when the backend is terminated, the server shuts down
or idle_session_timeout strikes, then it closes the socket), so a connection whose socket has
nothing to read is as usable as SELECT 1 would find it. When the socket does have something to
read, or the connection is not idle, Django's own check decides.
"""

from __future__ import annotations

import select

from django.db.backends.postgresql import base
from psycopg import pq


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed:
            return False
        pgconn = connection.pgconn
        if pgconn.status != pq.ConnStatus.OK or pgconn.transaction_status != pq.TransactionStatus.IDLE:
            return super().is_usable()
        readable, _, _ = select.select([pgconn.socket], [], [], 0)
        return super().is_usable() if readable else True
