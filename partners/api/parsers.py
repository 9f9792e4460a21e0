"""The partner API's JSON parser: DRF's, bounded in nesting depth.

Python's json module parses nested arrays and objects recursively: 100,000 opening brackets
(200 kB, well under the body size limit) raise RecursionError, which DRF's parser does not
catch, so the request ended as a 500. No request of ours nests deeper than a few levels
(a purchase with lines with fields), so anything deeper than MAX_DEPTH is refused as a parse
error (400, the usual error shape) before it reaches a serializer, the idempotency fingerprint
(json.dumps, recursive again) or a JSONField.
"""

from __future__ import annotations

from django.utils.translation import gettext as _
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH = 32


def nesting_depth_exceeds(data, limit: int) -> bool:
    """Whether lists/dicts in `data` nest deeper than `limit`. Iterative: a checker that
    recursed would fail on the input it is meant to refuse."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(_("JSON parse error - the body nests too deeply (at most %(limit)s levels).")
                             % {"limit": MAX_DEPTH}) from None
        if nesting_depth_exceeds(data, MAX_DEPTH):
            raise ParseError(_("JSON parse error - the body nests too deeply (at most %(limit)s levels).")
                             % {"limit": MAX_DEPTH})
        return data
