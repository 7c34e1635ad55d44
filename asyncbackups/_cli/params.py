"""The value types of the command line's options and arguments: IDs, seconds, counts."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import click

__all__ = ["COUNT", "ID", "POSITIVE_SECONDS", "SECONDS", "parse_id"]

if TYPE_CHECKING:
    _IntType = click.ParamType[int]
    _FloatType = click.ParamType[float]
else:  # not generic at run time in every click this supports
    _IntType = _FloatType = click.ParamType


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


ID = _Id()
SECONDS = _Seconds(allow_zero=True)
POSITIVE_SECONDS = _Seconds(allow_zero=False)
COUNT = _Count()
