"""What every database connection of the product sets up (loyalty_site/settings/base.py)."""

from __future__ import annotations

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db


def test_connections_run_without_jit_compilation():
    # Compiling a segment count's plan cost ~160 ms at a million members and saved nothing.
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone()[0] == "off"
