"""Development e-mail backend: print to the console and keep a copy under var/mail."""

from __future__ import annotations

from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.console import EmailBackend as ConsoleBackend
from django.core.mail.backends.filebased import EmailBackend as FileBackend


class ConsoleAndFileEmailBackend(BaseEmailBackend):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._console = ConsoleBackend(*args, **kwargs)
        self._file = FileBackend(*args, **kwargs)

    def send_messages(self, email_messages):
        self._file.send_messages(email_messages)
        return self._console.send_messages(email_messages)
