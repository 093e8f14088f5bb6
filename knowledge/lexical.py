"""The keyword index's stored form and query syntax; the terms themselves come from ``protostar.text``."""

from __future__ import annotations

from protostar.text import keyword_terms


def search_terms_text(text: str) -> str:
    """The stored form: space-separated terms, fed to PostgreSQL's `simple` text-search config."""
    return " ".join(keyword_terms(text))


def tsquery_text(terms: list[str]) -> str:
    """An OR query of quoted lexemes; terms are letters and digits only, so quoting is enough."""
    return " | ".join(f"'{term}'" for term in terms)
