"""What goes wrong with a file as a whole, or with a row while writing."""

from __future__ import annotations

from django.utils.translation import gettext_lazy

from core.errors import LoyaltyError


class ImportFileError(LoyaltyError):
    """The file as a whole can't be read (format, encoding, headings)."""

    code = "import_file_error"
    default_message = gettext_lazy("The file cannot be imported: %(detail)s")


class ImportFailed(LoyaltyError):
    """A row failed while writing: the transaction is rolled back, nothing is written."""

    code = "import_failed"
    default_message = gettext_lazy("The import stopped at line %(line)s (%(detail)s). Nothing was written.")
