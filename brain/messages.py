"""Typed bus payloads: one pydantic model per topic, validated on publish and on consume.

Modules that own a topic register its model here with `topic(...)`; the bus refuses to
publish or hand over a payload that does not validate. Pure data, no I/O.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from brain.errors import PayloadInvalid, UnknownTopic, first_problem

# The one NOTIFY channel of the bus. A notification carries a topic ("topic", or
# "topic window_ms" when a producer announces a wake-up window), never a payload.
CHANNEL = "brain_bus"

Model = TypeVar("Model", bound=type[BaseModel])

_TOPICS: dict[str, type[BaseModel]] = {}


class Payload(BaseModel):
    """Base for bus payloads: strict about unknown fields so typos are caught at publish."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def topic(name: str) -> Callable[[Model], Model]:
    """Class decorator registering a payload model for a topic."""

    def register(model: Model) -> Model:
        existing = _TOPICS.get(name)
        if existing is not None and existing.__qualname__ != model.__qualname__:
            raise ValueError(f"topic {name!r} already registered to {existing.__qualname__}")
        _TOPICS[name] = model
        return model

    return register


def model_for(name: str) -> type[BaseModel]:
    try:
        return _TOPICS[name]
    except KeyError:
        raise UnknownTopic(f"no payload model registered for topic {name!r}") from None


def registered_topics() -> list[str]:
    return sorted(_TOPICS)


def validate(name: str, payload: BaseModel | dict[str, Any]) -> BaseModel:
    """The payload as its topic's model; PayloadInvalid with one line when it does not fit."""
    model = model_for(name)
    if type(payload) is model:
        return payload
    # A subclass instance is checked as data too: it may carry fields the topic does not
    # have, which every consumer would refuse (the models forbid extras) long after publish.
    data = payload.model_dump(mode="json") if isinstance(payload, BaseModel) else payload
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _invalid(name, exc) from None


def to_json(name: str, payload: BaseModel | dict[str, Any]) -> str:
    """The payload as stored: validated as its topic's model, then serialised. A payload
    that already is that model goes straight to its serialiser: every publish comes here,
    and on a single-commit publish its client CPU counts in full against the commit rate."""
    if type(payload) is not model_for(name):
        payload = validate(name, payload)
    return payload.__pydantic_serializer__.to_json(payload).decode()  # model_dump_json(), one call less


def validate_json(name: str, text: str | bytes) -> BaseModel:
    """A payload as stored (JSON text) as its topic's model: parsed and validated in one pass,
    which is what consumers do for every message they take."""
    try:
        return model_for(name).model_validate_json(text)
    except ValidationError as exc:
        raise _invalid(name, exc) from None


def _invalid(name: str, exc: ValidationError) -> PayloadInvalid:
    where, what = first_problem(exc, "payload")
    return PayloadInvalid(f"{name}: {where}: {what}")
