"""Models with a German and an English version of a text (`name_de`, `name_en`)."""

from __future__ import annotations

from django.utils.translation import get_language


class TranslatedFieldsMixin:
    """`obj.name` shows `name_de` or `name_en` by the active language (German when empty)."""

    def _translated(self, field: str) -> str:
        lang = (get_language() or "de")[:2]
        value = getattr(self, f"{field}_{lang}", "") if lang in ("de", "en") else ""
        return value or getattr(self, f"{field}_de")
