"""The value types of the command line's options and arguments: IDs, seconds, counts, spans."""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import click

__all__ = [
    "COUNT",
    "DESCRIPTION",
    "DESCRIPTION_MAX",
    "DURATION",
    "ID",
    "LIMIT",
    "POSITIVE_SECONDS",
    "SECONDS",
    "describe_duration",
    "parse_duration",
    "parse_id",
]

# What the API takes in a backup's description (its documentation says at most 255).
DESCRIPTION_MAX = 255

if TYPE_CHECKING:
    _IntType = click.ParamType[int]
    _FloatType = click.ParamType[float]
    _StrType = click.ParamType[str]
else:  # not generic at run time in every click this supports
    _IntType = _FloatType = _StrType = click.ParamType


def parse_id(text: str) -> int:
    """A server or backup ID: a positive whole number; ``ValueError`` otherwise."""
    stripped = text.strip().removeprefix("+")
    if not stripped.isascii() or not stripped.isdigit() or int(stripped) <= 0:
        raise ValueError(f"expected a positive whole number, got {text!r}")
    return int(stripped)


class _Id(_IntType):
    name = "id"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
        try:
            return parse_id(str(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)


class _Seconds(_FloatType):
    name = "seconds"

    def __init__(self, *, allow_zero: bool) -> None:
        self.allow_zero = allow_zero

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            self.fail(f"expected seconds, got {value!r}", param, ctx)
        if not (seconds >= 0 and math.isfinite(seconds)):
            self.fail(f"expected a non-negative number of seconds, got {value!r}", param, ctx)
        if seconds == 0 and not self.allow_zero:
            self.fail(f"expected more than 0 seconds, got {value!r}", param, ctx)
        return seconds


class _Count(_IntType):
    name = "count"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        text = str(value).strip().removeprefix("+")
        if not text.isascii() or not text.isdigit():
            self.fail(f"expected a whole number, got {value!r}", param, ctx)
        return int(text)


class _Limit(_IntType):
    """How many items at most: 1 or more (leaving the option out means all)."""

    name = "limit"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        text = str(value).strip().removeprefix("+")
        if not text.isascii() or not text.isdigit():
            self.fail(f"expected a whole number of 1 or more, got {value!r}", param, ctx)
        if int(text) == 0:
            self.fail("0 would show nothing: give 1 or more, or leave it out for all", param, ctx)
        return int(text)


class _Description(_StrType):
    """A backup's description: checked against the API's limit before anything is sent."""

    name = "text"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        if len(text) > DESCRIPTION_MAX:
            self.fail(
                f"{len(text)} characters; the API takes at most {DESCRIPTION_MAX} "
                "(nothing was sent)",
                param,
                ctx,
            )
        return text


ID = _Id()
SECONDS = _Seconds(allow_zero=True)
POSITIVE_SECONDS = _Seconds(allow_zero=False)
COUNT = _Count()
LIMIT = _Limit()
DESCRIPTION = _Description()


# -- durations (prune --older-than, coverage --within) -----------------------------------

if TYPE_CHECKING:
    _DurationType = click.ParamType[timedelta]
else:
    _DurationType = click.ParamType

_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
_PART = re.compile(r"(\d+(?:\.\d+)?)([wdhms])")


def parse_duration(text: str) -> timedelta:
    """A span like ``30d``, ``12h``, ``90m``, ``2w`` or ``1d12h``; ``ValueError`` otherwise.

    Units: ``w`` weeks, ``d`` days, ``h`` hours, ``m`` minutes, ``s`` seconds. A bare
    number is refused: ``30`` could mean days or minutes, and a prune must not guess.
    """
    stripped = text.strip().lower()
    if not stripped.isascii() or not stripped or _PART.sub("", stripped):
        raise ValueError(f"expected a duration like 30d, 12h or 90m, got {text!r}")
    try:
        span = timedelta()
        for number, unit in _PART.findall(stripped):
            span += timedelta(**{_UNITS[unit]: float(number)})
    except OverflowError:
        raise ValueError(f"{text!r} is too long a duration") from None
    if span <= timedelta(0):
        raise ValueError(f"expected a duration of more than 0, got {text!r}")
    return span


def describe_duration(span: timedelta) -> str:
    """A span in words, largest units first: ``30 days``, ``36 hours``, ``90 minutes``."""
    seconds = round(span.total_seconds())
    if seconds < 1:
        return f"{span.total_seconds():g} seconds"
    # Up to two days in hours, up to two hours in minutes, when that says it whole.
    if seconds < 2 * 86_400 and seconds % 3_600 == 0 and seconds % 86_400:
        return _count(seconds // 3_600, "hour")
    if seconds < 2 * 3_600 and seconds % 60 == 0:
        return _count(seconds // 60, "minute")
    parts = []
    for size, unit in ((86_400, "day"), (3_600, "hour"), (60, "minute"), (1, "second")):
        number, seconds = divmod(seconds, size)
        if number:
            parts.append(_count(number, unit))
    return " ".join(parts)


def _count(number: int, unit: str) -> str:
    return f"{number} {unit}" if number == 1 else f"{number} {unit}s"


class _Duration(_DurationType):
    name = "duration"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> timedelta:
        if isinstance(value, timedelta):
            return value
        try:
            return parse_duration(str(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)


DURATION = _Duration()
