"""Models with a German and an English version of a text (`name_de`, `name_en`)."""

from __future__ import annotations

from django.utils.translation import get_language


class TranslatedFieldsMixin:
    """`obj.name` shows `name_de` or `name_en` by the active language (German when empty)."""

    def _translated(self, field: str) -> str:
        lang = (get_language() or "de")[:2]
        value = getattr(self, f"{field}_{lang}", "") if lang in ("de", "en") else ""
        return value or getattr(self, f"{field}_de")



class translated(property):
    """`name = translated()` on a TranslatedFieldsMixin model: `obj.name` is `name_de` or `name_en`
    by the active language (German when the English one is empty). A property, so the admin, DRF
    and the schema generator treat it as one (a text)."""

    def __init__(self) -> None:
        super().__init__(self._value)
        self.attribute = ""

    def __set_name__(self, owner, attribute: str) -> None:
        self.attribute = attribute

    def _value(self, instance) -> str:
        return instance._translated(self.attribute)
