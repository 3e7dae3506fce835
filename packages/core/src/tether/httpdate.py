"""HTTP-date formatting and parsing (RFC 9110 section 5.6.7).

Senders generate only IMF-fixdate (``Sun, 06 Nov 1994 08:49:37 GMT``);
recipients accept it and the two obsolete forms, RFC 850
(``Sunday, 06-Nov-94 08:49:37 GMT``) and asctime (``Sun Nov  6 08:49:37 1994``).

Parsing is strict: exact spacing, the weekday must name the date's real
weekday, the time zone must be ``GMT``, and fields must be in range. Anything
else is "not a valid HTTP-date" and gives ``None``; RFC 9110 section 13.1.3
tells recipients to ignore such validators, which is what callers do with it.

The core never reads a clock. The RFC 850 two-digit-year rule needs "now":
callers pass it as ``now``; without it a fixed pivot is used (see
:func:`parse_http_date`).
"""

from __future__ import annotations

import calendar
import math
import time

from tether.errors import LocalProtocolError

__all__ = [
    "InvalidTimestamp",
    "format_asctime_date",
    "format_http_date",
    "format_rfc850_date",
    "parse_http_date",
]

_DAY_NAMES = (b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun")
_LONG_DAY_NAMES = (
    b"Monday",
    b"Tuesday",
    b"Wednesday",
    b"Thursday",
    b"Friday",
    b"Saturday",
    b"Sunday",
)
_MONTH_NAMES = (
    b"Jan",
    b"Feb",
    b"Mar",
    b"Apr",
    b"May",
    b"Jun",
    b"Jul",
    b"Aug",
    b"Sep",
    b"Oct",
    b"Nov",
    b"Dec",
)
_MONTHS = {name: index + 1 for index, name in enumerate(_MONTH_NAMES)}
_SHORT_DAYS = {name: index for index, name in enumerate(_DAY_NAMES)}
_LONG_DAYS = {name: index for index, name in enumerate(_LONG_DAY_NAMES)}
_DIGITS = frozenset(b"0123456789")

# Largest timestamp whose IMF-fixdate still has a four-digit year (9999-12-31T23:59:59Z).
_MAX_TIMESTAMP = 253402300799
# Smallest: 0001-01-01T00:00:00Z.
_MIN_TIMESTAMP = -62135596800

# Servers format the current second for every response; remember the last one.
_last_formatted: tuple[int, bytes] = (-(2**63), b"")


class InvalidTimestamp(LocalProtocolError):
    """The timestamp cannot be written as an IMF-fixdate (year outside 1..9999)."""


def format_http_date(timestamp: float) -> bytes:
    """Format a POSIX timestamp as an IMF-fixdate, e.g. ``b"Sun, 06 Nov 1994 08:49:37 GMT"``.

    Fractions of a second are dropped (rounded down). Raises
    :class:`InvalidTimestamp` for a non-finite timestamp or a year outside 1..9999.
    """
    global _last_formatted
    if not math.isfinite(timestamp):
        raise InvalidTimestamp(f"timestamp {timestamp!r} is not finite")
    seconds = math.floor(timestamp)
    if seconds == _last_formatted[0]:
        return _last_formatted[1]
    if not _MIN_TIMESTAMP <= seconds <= _MAX_TIMESTAMP:
        raise InvalidTimestamp(f"timestamp {timestamp!r} is outside years 1..9999")
    t = time.gmtime(seconds)
    value = b"%s, %02d %s %04d %02d:%02d:%02d GMT" % (
        _DAY_NAMES[t.tm_wday],
        t.tm_mday,
        _MONTH_NAMES[t.tm_mon - 1],
        t.tm_year,
        t.tm_hour,
        t.tm_min,
        t.tm_sec,
    )
    _last_formatted = (seconds, value)
    return value


def _gmtime(timestamp: float) -> time.struct_time:
    if not math.isfinite(timestamp):
        raise InvalidTimestamp(f"timestamp {timestamp!r} is not finite")
    seconds = math.floor(timestamp)
    if not _MIN_TIMESTAMP <= seconds <= _MAX_TIMESTAMP:
        raise InvalidTimestamp(f"timestamp {timestamp!r} is outside years 1..9999")
    return time.gmtime(seconds)


def format_rfc850_date(timestamp: float) -> bytes:
    """The obsolete RFC 850 form, e.g. ``b"Sunday, 06-Nov-94 08:49:37 GMT"``.

    For tests and for talking to legacy recipients only: RFC 9110 section 5.6.7
    says senders MUST generate IMF-fixdate (:func:`format_http_date`). The year
    keeps only two digits, so the century is lost.
    """
    t = _gmtime(timestamp)
    return b"%s, %02d-%s-%02d %02d:%02d:%02d GMT" % (
        _LONG_DAY_NAMES[t.tm_wday],
        t.tm_mday,
        _MONTH_NAMES[t.tm_mon - 1],
        t.tm_year % 100,
        t.tm_hour,
        t.tm_min,
        t.tm_sec,
    )


def format_asctime_date(timestamp: float) -> bytes:
    """The obsolete ANSI C asctime() form, e.g. ``b"Sun Nov  6 08:49:37 1994"``.

    For tests and legacy recipients only, like :func:`format_rfc850_date`.
    """
    t = _gmtime(timestamp)
    return b"%s %s %2d %02d:%02d:%02d %04d" % (
        _DAY_NAMES[t.tm_wday],
        _MONTH_NAMES[t.tm_mon - 1],
        t.tm_mday,
        t.tm_hour,
        t.tm_min,
        t.tm_sec,
        t.tm_year,
    )


def _number(value: bytes) -> int:
    """Digits only (no sign, no spaces); -1 otherwise."""
    if not value or not all(c in _DIGITS for c in value):
        return -1
    return int(value)


def _clock(value: bytes) -> tuple[int, int, int] | None:
    """``HH:MM:SS`` with hour 00-23, minute 00-59, second 00-60 (a leap second)."""
    if len(value) != 8 or value[2] != 0x3A or value[5] != 0x3A:
        return None
    hour, minute, second = _number(value[0:2]), _number(value[3:5]), _number(value[6:8])
    if not (0 <= hour <= 23 and 0 <= minute <= 59 and 0 <= second <= 60):
        return None
    return hour, minute, second


def _timestamp(
    weekday: int, year: int, month: int, day: int, clock: tuple[int, int, int]
) -> float | None:
    if not 1 <= year <= 9999 or not 1 <= day <= calendar.monthrange(year, month)[1]:
        return None
    if calendar.weekday(year, month, day) != weekday:
        return None
    hour, minute, second = clock
    # A leap second (:60) is the same instant as :59 plus one, which timegm computes.
    return float(calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)))


def _two_digit_year(yy: int, now: float | None) -> int:
    """RFC 9110 section 5.6.7: a year "more than 50 years in the future" is in the past."""
    if now is None:
        # No clock in the core: the fixed pivot 70 (RFC 6265 section 5.1.1's choice).
        return 1900 + yy if yy >= 70 else 2000 + yy
    current = time.gmtime(math.floor(now)).tm_year if math.isfinite(now) else 2000
    year = current - current % 100 + yy
    if year > current + 50:
        year -= 100
    return year


def parse_http_date(value: bytes | str, *, now: float | None = None) -> float | None:
    """Parse an HTTP-date in any of the three RFC 9110 formats; ``None`` if invalid.

    Returns the POSIX timestamp (a whole number of seconds). Surrounding
    spaces and tabs are ignored; everything else must match the grammar exactly.

    ``now`` (a POSIX timestamp) anchors the RFC 850 two-digit-year rule: a year
    that appears more than 50 years after ``now`` is taken as the most recent
    past year with those digits. Without ``now`` the core, which reads no
    clock, maps 70-99 to 19xx and 00-69 to 20xx.
    """
    if isinstance(value, str):
        try:
            data = value.encode("ascii")
        except UnicodeEncodeError:
            return None
    else:
        data = bytes(value)
    data = data.strip(b" \t")
    comma = data.find(b",")
    if comma == 3:
        # IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
        if len(data) != 29:
            return None
        weekday = _SHORT_DAYS.get(data[0:3])
        if weekday is None or data[4:5] != b" " or data[7:8] != b" " or data[11:12] != b" ":
            return None
        if data[16:17] != b" " or data[25:] != b" GMT":
            return None
        month = _MONTHS.get(data[8:11])
        clock = _clock(data[17:25])
        day, year = _number(data[5:7]), _number(data[12:16])
        if month is None or clock is None or day < 0 or year < 0:
            return None
        return _timestamp(weekday, year, month, day, clock)
    if comma > 3:
        # RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"
        weekday = _LONG_DAYS.get(data[:comma])
        rest = data[comma + 1 :]
        if weekday is None or len(rest) != 23:
            return None
        if rest[0:1] != b" " or rest[3:4] != b"-" or rest[7:8] != b"-" or rest[10:11] != b" ":
            return None
        if rest[19:] != b" GMT":
            return None
        month = _MONTHS.get(rest[4:7])
        clock = _clock(rest[11:19])
        day, yy = _number(rest[1:3]), _number(rest[8:10])
        if month is None or clock is None or day < 0 or yy < 0:
            return None
        return _timestamp(weekday, _two_digit_year(yy, now), month, day, clock)
    if comma == -1 and len(data) == 24:
        # asctime: "Sun Nov  6 08:49:37 1994" (day is 2DIGIT or SP DIGIT)
        weekday = _SHORT_DAYS.get(data[0:3])
        if weekday is None or data[3:4] != b" " or data[7:8] != b" ":
            return None
        if data[10:11] != b" " or data[19:20] != b" ":
            return None
        month = _MONTHS.get(data[4:7])
        clock = _clock(data[11:19])
        day_field = data[8:10]
        if day_field[0:1] == b" ":
            day = _number(day_field[1:])
        else:
            day = _number(day_field)
        year = _number(data[20:24])
        if month is None or clock is None or day < 0 or year < 0:
            return None
        return _timestamp(weekday, year, month, day, clock)
    return None
