"""A small, pluggable SMS interface in the shape of Django's e-mail backends.

`settings.LOYALTY_SMS_BACKEND` names the backend class (dotted path). A backend takes a list of
`SmsMessage` and returns how many it sent, raising on failure unless `fail_silently`. A
provider's backend (a gateway's HTTP API) subclasses `BaseSmsBackend`; the ones here are for
development and tests:

- `ConsoleSmsBackend` prints messages,
- `FileSmsBackend` appends them as JSON lines to `settings.LOYALTY_SMS_FILE_PATH`,
- `LocmemSmsBackend` keeps them in `campaigns.sms.outbox` (like `django.core.mail.outbox`).

`idempotent_delivery = True` on a backend class promises that a message handed over twice with
the same `reference` reaches the phone once (many gateways take a client reference for exactly
that). The campaign sender then retries a send interrupted by a crash (see campaigns.services).
"""

from __future__ import annotations

import json
import sys
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string


@dataclass
class SmsMessage:
    to: str
    body: str
    reference: str = ""  # our id for the message: the idempotency key for gateways that take one


class BaseSmsBackend:
    idempotent_delivery = False

    def __init__(self, fail_silently: bool = False, **kwargs) -> None:
        self.fail_silently = fail_silently

    def send_messages(self, messages: list[SmsMessage]) -> int:
        raise NotImplementedError


class ConsoleSmsBackend(BaseSmsBackend):
    def __init__(self, *args, stream=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.stream = stream or sys.stdout

    def send_messages(self, messages: list[SmsMessage]) -> int:
        for message in messages:
            self.stream.write(f"SMS to {message.to} [{message.reference}]\n{message.body}\n{'-' * 40}\n")
        self.stream.flush()
        return len(messages)


class FileSmsBackend(BaseSmsBackend):
    _lock = threading.Lock()

    def __init__(self, *args, file_path=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.path = Path(file_path or settings.LOYALTY_SMS_FILE_PATH)

    def send_messages(self, messages: list[SmsMessage]) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, self.path.open("a", encoding="utf-8") as stream:
            for message in messages:
                stream.write(json.dumps({**asdict(message), "at": timezone.now().isoformat()}) + "\n")
        return len(messages)


outbox: list[SmsMessage] = []


class LocmemSmsBackend(BaseSmsBackend):
    def send_messages(self, messages: list[SmsMessage]) -> int:
        outbox.extend(messages)
        return len(messages)


def sms_backend_class() -> type[BaseSmsBackend]:
    return import_string(settings.LOYALTY_SMS_BACKEND)


def get_sms_backend(backend: str | None = None, **kwargs) -> BaseSmsBackend:
    klass = import_string(backend) if backend else sms_backend_class()
    return klass(**kwargs)


def send_sms(to: str, body: str, *, reference: str = "", fail_silently: bool = False) -> int:
    return get_sms_backend(fail_silently=fail_silently).send_messages([SmsMessage(to, body, reference)])
