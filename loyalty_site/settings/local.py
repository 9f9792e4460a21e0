"""Local development and the `make run` demo: the PostgreSQL cluster and Redis server that `make run`
starts under var/ (scripts/localstack.sh), the defaults of base.py."""

from .base import *  # noqa: F403
from .base import STATIC_ROOT, VAR_DIR, env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
# E-mails go to the console and to files under var/mail so flows can be followed locally.
EMAIL_BACKEND = env("DJANGO_EMAIL_BACKEND", default="core.mail.ConsoleAndFileEmailBackend")
EMAIL_FILE_PATH = VAR_DIR / "mail"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # static files come from the finders while DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
