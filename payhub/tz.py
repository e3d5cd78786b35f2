"""The one Asia/Shanghai time zone every channel speaks.

China has kept UTC+08:00 without daylight saving since 1991, so a fixed offset
named ``Asia/Shanghai`` is exact for every date a payment can carry, needs no
tz database (bare Windows, slim containers), and compares by identity on the
hot paths. Storage is UTC; channels' wall-clock times are read and written in
this zone.
"""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Final

__all__ = ["SHANGHAI"]

#: Asia/Shanghai: UTC+08:00, no daylight saving.
SHANGHAI: Final = timezone(timedelta(hours=8), "Asia/Shanghai")
