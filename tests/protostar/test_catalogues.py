"""The Korean and English catalogues ship compiled: every Korean entry is translated, the committed .mo files say
exactly what the .po files say, and nothing in the setup needs gettext's msgfmt (not installed on a fresh machine)."""

from __future__ import annotations

import gettext
import re

import polib
import pytest

from tests.conftest import ROOT

LOCALE = ROOT / "locale"


@pytest.mark.parametrize("language", ["ko", "en"])
def test_the_committed_mo_file_matches_its_po_file(language):
    po = polib.pofile(str(LOCALE / language / "LC_MESSAGES" / "django.po"))
    with (LOCALE / language / "LC_MESSAGES" / "django.mo").open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    for entry in po.translated_entries():
        if entry.msgid_plural:
            assert compiled.ngettext(entry.msgid, entry.msgid_plural, 1) == entry.msgstr_plural[0]
        elif entry.msgctxt:
            assert compiled.pgettext(entry.msgctxt, entry.msgid) == entry.msgstr
        else:
            assert compiled.gettext(entry.msgid) == entry.msgstr, entry.msgid


def test_every_korean_entry_is_translated_and_keeps_its_placeholders():
    po = polib.pofile(str(LOCALE / "ko" / "LC_MESSAGES" / "django.po"))
    assert not po.untranslated_entries() and not po.fuzzy_entries()
    placeholder = re.compile(r"%\(\w+\)[sd]")
    for entry in po.translated_entries():
        translated = entry.msgstr or entry.msgstr_plural[0]
        assert sorted(placeholder.findall(entry.msgid)) == sorted(placeholder.findall(translated)), entry.msgid


def test_the_setup_does_not_compile_messages():
    setup = [ROOT / "Makefile", *sorted((ROOT / "scripts").glob("*.sh"))]
    for path in setup:
        text = path.read_text()
        assert "compilemessages" not in text and "msgfmt" not in text, path
