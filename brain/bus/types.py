"""What handlers see and return: a delivery, its outputs, and a handler's result; and a
message's row as every insert in queries.sql takes it."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from brain import messages
from brain.db.types import Conn

# A message's column values, in the order of every insert in queries.sql (see row()).
Row = tuple[str, str, str | None, str | None, int | None, str]


@dataclass(frozen=True)
class Outgoing:
    """A message to publish: as a handler's output, or in a batch (Bus.publish_many)."""

    topic: str
    payload: BaseModel | dict[str, Any]
    from_agent: str
    correlation_id: str | None = None
    causation_id: int | None = None
    to_agent: str | None = None


@dataclass(frozen=True)
class Delivery:
    """One message as handed to one consumer (deliveries are keyed by message and consumer)."""

    consumer: str
    message_id: int
    topic: str
    payload: BaseModel
    from_agent: str
    to_agent: str | None
    correlation_id: str | None
    causation_id: int | None
    attempts: int
    created_at: datetime

    def reply(self, topic: str, payload: BaseModel | dict[str, Any], *, from_agent: str,
              to_agent: str | None = None) -> Outgoing:
        """An output message in the same cycle, caused by this one."""
        return Outgoing(topic, payload, from_agent, self.correlation_id, self.message_id, to_agent)


InTx = Callable[[Conn], Awaitable["list[Outgoing] | None"]]
# A handled delivery and its output messages, already encoded (so already valid).
Handled = tuple[Delivery, list[Row]]


@dataclass
class HandlerResult:
    outputs: list[Outgoing] = field(default_factory=list)
    # Extra writes that commit together with the ack (e.g. an order row); the messages it
    # returns are published in the same transaction.
    in_tx: InTx | None = None
    # Wait for the WAL flush before the ack returns: for work that an effect outside the
    # database (a broker) will follow.
    durable: bool = False


Handler = Callable[[Delivery], Awaitable["list[Outgoing] | HandlerResult | None"]]


def row(topic: str, payload: BaseModel | dict[str, Any], from_agent: str, to_agent: str | None,
        correlation_id: str | None, causation_id: int | None) -> Row:
    """A message's column values; the payload validated as its topic's model and serialised."""
    return (topic, from_agent, to_agent, correlation_id, causation_id, messages.to_json(topic, payload))


def encode(out: Outgoing) -> Row:
    return row(out.topic, out.payload, out.from_agent, out.to_agent, out.correlation_id, out.causation_id)


def columns(rows: list[Row]) -> list[list[Any]]:
    """Rows as the parallel arrays the batched inserts unnest (six empty ones for no rows)."""
    return [list(col) for col in zip(*rows)] if rows else [[] for _ in range(6)]
