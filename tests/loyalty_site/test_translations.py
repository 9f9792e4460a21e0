"""Everything a member or staff user reads exists in German: the catalogue has no untranslated
or fuzzy entry and compiles cleanly (placeholders match). `make messages` extracts new strings."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CATALOGUE = Path(__file__).resolve().parents[2] / "locale" / "de" / "LC_MESSAGES" / "django.po"


@pytest.mark.skipif(shutil.which("msgfmt") is None, reason="gettext is installed by scripts/system-deps.sh")
def test_the_german_catalogue_is_complete_and_compiles(tmp_path):
    result = subprocess.run(["msgfmt", "--check", "--statistics", "-o", str(tmp_path / "django.mo"), str(CATALOGUE)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "untranslated" not in result.stderr and "fuzzy" not in result.stderr, result.stderr


SOURCE_DIRS = ["core", "loyalty_site", "partners", "transfers", "members", "rewards", "referrals", "campaigns",
               "feedback", "engagement", "offers", "templates"]


@pytest.mark.skipif(shutil.which("xgettext") is None, reason="gettext is installed by scripts/system-deps.sh")
def test_every_translatable_text_in_the_code_has_a_german_translation(tmp_path):
    """A string marked for translation but missing from the catalogue shows up in English on a German
    page. makemessages runs on a copy, so the committed catalogue keeps its order."""
    root = CATALOGUE.parents[3]
    for name in SOURCE_DIRS:
        shutil.copytree(root / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "migrations"))
    shutil.copytree(root / "locale", tmp_path / "locale")
    subprocess.run(["django-admin", "makemessages", "-l", "de", "--no-obsolete", "-v0"], cwd=tmp_path, check=True,
                   env={"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin"})
    untranslated = subprocess.run(["msgattrib", "--untranslated", "--no-wrap",
                                   str(tmp_path / "locale" / "de" / "LC_MESSAGES" / "django.po")],
                                  capture_output=True, text=True, check=True).stdout
    missing = [line for line in untranslated.splitlines() if line.startswith("msgid ") and line != 'msgid ""']
    assert not missing, f"{len(missing)} texts have no German translation: {missing[:20]}"
