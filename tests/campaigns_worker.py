"""A slow e-mail backend for the worker-kill test (tests/campaigns/test_campaigns_worker.py).

It works across processes through files in $LOYALTY_TEST_DELIVERY_DIR:
- every hand-over is appended to attempts.log (before the slow part, so a killed worker's
  message in flight shows up there),
- a delivery is a marker file named after the Message-ID, created with O_EXCL: a second
  hand-over of the same message is dropped, like a gateway that dedupes on a client reference.
  That is what `idempotent_delivery = True` promises the campaign sender.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from django.core.mail.backends.base import BaseEmailBackend

DELAY_SECONDS = 0.25  # slow enough that a kill lands in the middle of a campaign


class SlowFileEmailBackend(BaseEmailBackend):
    idempotent_delivery = True

    def send_messages(self, email_messages) -> int:
        folder = Path(os.environ["LOYALTY_TEST_DELIVERY_DIR"])
        (folder / "delivered").mkdir(parents=True, exist_ok=True)
        for email in email_messages:
            key = email.extra_headers["Message-ID"]
            line = f"{key} {email.to[0]}\n"
            with (folder / "attempts.log").open("a") as attempts:
                attempts.write(line)
                attempts.flush()
                os.fsync(attempts.fileno())
            time.sleep(DELAY_SECONDS)
            marker = folder / "delivered" / hashlib.sha256(key.encode()).hexdigest()
            try:
                descriptor = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                continue  # already delivered: dropped
            with os.fdopen(descriptor, "w") as delivered:
                delivered.write(line)
        return len(email_messages)


def delivered_addresses(folder: Path) -> list[str]:
    """The address of every delivery (one marker file per Message-ID)."""
    return [path.read_text().split()[1] for path in (folder / "delivered").glob("*")] if (
        folder / "delivered").exists() else []


def handed_over(folder: Path) -> list[str]:
    """Every hand-over to the backend ("<Message-ID> <address>"), repeats included."""
    attempts = folder / "attempts.log"
    return attempts.read_text().splitlines() if attempts.exists() else []
