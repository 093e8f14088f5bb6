"""Filters built into the prompt engine (no ``{% load %}`` needed).

``inert`` keeps document and conversation text from closing the blocks that label it as data: a passage containing
``</source>`` followed by instructions would otherwise step outside its block. ``attr`` makes a value safe inside a
double-quoted attribute. ``quote`` turns text into a markdown blockquote, line by line, so a blank line inside an
excerpt does not end the quote.
"""

from __future__ import annotations

import re

from django import template
from django.template.defaultfilters import stringfilter

register = template.Library()

# The tags our shipped prompts use as delimiters.
_DELIMITER_TAG = re.compile(r"<(\s*/?\s*(?:sources?|conversation_summary|previous_summary|new_turns|turn)\b)", re.I)


@register.filter(is_safe=True)
@stringfilter
def inert(value: str) -> str:
    return _DELIMITER_TAG.sub(r"&lt;\1", value)


@register.filter(is_safe=True)
@stringfilter
def attr(value: str) -> str:
    return " ".join(inert(value).replace('"', "'").split())


@register.filter(is_safe=True)
@stringfilter
def quote(value: str) -> str:
    lines = value.strip("\n").splitlines() or [""]
    return "\n".join(f"> {line}".rstrip() for line in lines)
