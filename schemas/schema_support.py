"""Shared by the schema tests: a stdlib-only RFC 3339 date-time format check, so results
do not depend on which optional jsonschema format packages happen to be installed."""

import datetime
import re

from jsonschema import FormatChecker

FORMAT_CHECKER = FormatChecker()
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$", re.ASCII
)


@FORMAT_CHECKER.checks("date-time", raises=ValueError)
def _is_datetime(instance):
    if not isinstance(instance, str):
        return True
    if not _RFC3339.match(instance):
        raise ValueError(f"not an RFC 3339 date-time: {instance!r}")
    datetime.datetime.fromisoformat(instance.upper().replace("Z", "+00:00"))  # raises on e.g. month 13
    return True
