"""Payloads as the bus stores them: validated against their topic's model, then JSON."""
from __future__ import annotations

import json

import pytest

from brain import messages
from brain.errors import PayloadInvalid, UnknownTopic
from brain.messages import Payload, topic


@topic("unit.quote")
class Quote(Payload):
    symbol: str
    price: float


@topic("unit.other")
class Other(Payload):
    symbol: str


def test_a_payload_of_its_topics_model_is_stored_as_its_json():
    text = messages.to_json("unit.quote", Quote(symbol="SPY", price=1.5))
    assert json.loads(text) == {"symbol": "SPY", "price": 1.5}
    assert text == Quote(symbol="SPY", price=1.5).model_dump_json()


def test_a_dict_or_another_model_is_validated_against_the_topic_first():
    assert json.loads(messages.to_json("unit.quote", {"symbol": "SPY", "price": "2"})) == {"symbol": "SPY",
                                                                                          "price": 2.0}
    with pytest.raises(PayloadInvalid, match="unit.quote: price: Field required"):
        messages.to_json("unit.quote", Other(symbol="SPY"))
    with pytest.raises(PayloadInvalid, match="unit.quote: venue: Extra inputs are not permitted"):
        messages.to_json("unit.quote", {"symbol": "SPY", "price": 1.0, "venue": "x"})
    with pytest.raises(UnknownTopic):
        messages.to_json("unit.nope", {"symbol": "SPY"})


def test_a_subclass_of_the_topics_model_is_refused_when_it_adds_fields():
    class QuoteWithVenue(Quote):
        venue: str

    class SameQuote(Quote):
        pass

    with pytest.raises(PayloadInvalid, match="unit.quote: venue: Extra inputs are not permitted"):
        messages.to_json("unit.quote", QuoteWithVenue(symbol="SPY", price=1.0, venue="x"))
    assert json.loads(messages.to_json("unit.quote", SameQuote(symbol="SPY", price=1.0))) == {"symbol": "SPY",
                                                                                             "price": 1.0}
