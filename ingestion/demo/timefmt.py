"""Fast, DST-correct formatting of epoch seconds in the native styles of the demo systems.

Offsets are cached per (zone, UTC hour): every zone the demo uses changes offset on a whole UTC hour,
so the cache is exact and keeps per-record zoneinfo work out of the hot loop.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

BERLIN = "Europe/Berlin"
#: The storefront's local time zone per order currency (the store that sold it).
STORE_TZ = {"EUR": "Europe/Berlin", "USD": "America/New_York", "GBP": "Europe/London"}


class Clock:
    """Formats epoch seconds; holds the caches (one instance per generation run)."""

    def __init__(self) -> None:
        self._zones: dict[str, ZoneInfo] = {}
        self._offsets: dict[tuple[str, int], int] = {}
        self._dates: dict[int, str] = {}

    def offset(self, tz: str, ts: int) -> int:
        """UTC offset in seconds of zone `tz` at epoch second `ts`."""
        key = (tz, ts // 3600)
        off = self._offsets.get(key)
        if off is None:
            zone = self._zones.get(tz)
            if zone is None:
                zone = self._zones[tz] = ZoneInfo(tz)
            delta = datetime.fromtimestamp(key[1] * 3600, zone).utcoffset()
            off = self._offsets[key] = int(delta.total_seconds()) if delta is not None else 0
        return off

    def _date(self, day: int) -> str:
        text = self._dates.get(day)
        if text is None:
            text = self._dates[day] = time.strftime("%Y-%m-%d", time.gmtime(day * 86400))
        return text

    def _wall(self, local: int, sep: str) -> str:
        day, secs = divmod(local, 86400)
        hours, rest = divmod(secs, 3600)
        return f"{self._date(day)}{sep}{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"

    def iso_local(self, ts: int, tz: str) -> str:
        """ISO-8601 with the zone's offset, e.g. `2026-10-03T09:15:00+02:00`."""
        off = self.offset(tz, ts)
        sign = "+" if off >= 0 else "-"
        hours, minutes = divmod(abs(off) // 60, 60)
        return f"{self._wall(ts + off, 'T')}{sign}{hours:02d}:{minutes:02d}"

    def iso_z(self, ts: int) -> str:
        """ISO-8601 UTC with a Z suffix, e.g. `2026-10-03T07:15:00Z`."""
        return f"{self._wall(ts, 'T')}Z"

    def berlin_wall(self, ts: int) -> str:
        """Berlin local wall time `YYYY-MM-DD HH:MM:SS` (the ERP's ChangedOn)."""
        return self._wall(ts + self.offset(BERLIN, ts), " ")

    def berlin_date_dmy(self, ts: int) -> str:
        """Berlin local date as `dd.mm.yyyy` (the ERP's DocDate)."""
        ymd = self._date((ts + self.offset(BERLIN, ts)) // 86400)
        return f"{ymd[8:10]}.{ymd[5:7]}.{ymd[0:4]}"

    def berlin_unambiguous(self, ts: int) -> int:
        """Move `ts` out of the fall-back hour whose Berlin wall time occurs twice.

        A wall time without an offset cannot be mapped back to UTC there, so the ERP never gets one.
        The shift is two hours forward, inside the same UTC day (the fall-back is at 01:00 UTC).
        """
        off = self.offset(BERLIN, ts)
        if self.offset(BERLIN, ts + 3600) < off or self.offset(BERLIN, ts - 3600) > off:
            return ts + 7200
        return ts


def day_start_ts(d: object) -> int:
    """Epoch seconds of 00:00:00 UTC of a `datetime.date`."""
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp())  # type: ignore[attr-defined]
