"""One exception base for every error a user can cause; its message is one line."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class BrainError(Exception):
    """Something went wrong in the trading brain."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class ConfigError(BrainError):
    """The configuration is invalid."""


class DatabaseUnavailable(BrainError):
    """The database cannot be reached."""


class PayloadInvalid(BrainError):
    """A message payload does not validate against its topic's model."""


class UnknownTopic(BrainError):
    """No payload model is registered for this topic."""


def one_line(exc: BaseException) -> str:
    """An exception as one line for a log or an operator: its first line, or its type."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def first_problem(exc: ValidationError, where_if_none: str = "value") -> tuple[str, str]:
    """A pydantic ValidationError's first problem, as (where, what): ("payload.qty", "Input
    should be greater than 0")."""
    err = exc.errors()[0]
    return ".".join(str(p) for p in err["loc"]) or where_if_none, err["msg"]
