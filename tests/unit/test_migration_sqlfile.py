"""A downgrade can restore a replaced function from the revision that defined it before: for
every function the revisions replaced so far, that is exactly the copy written by hand in the
replacing revision's .down.sql."""
from __future__ import annotations

from pathlib import Path

import pytest

import migrations
from migrations.sqlfile import function_definition, previous_function_definition

VERSIONS = Path(migrations.__file__).parent / "versions"

HAND_WRITTEN_DOWNS = [
    ("0005_claim_and_ledger_lookup", "bus_claim"),
    ("0006_claim_takes_in_leased", "bus_claim"),
    ("0007_claim_snapshot_after_cursor_lock", "bus_claim"),
    ("0008_halt_gate_holds_against_the_brain", "refuse_opening_order_while_halted"),
]


@pytest.mark.parametrize(("revision", "function"), HAND_WRITTEN_DOWNS)
def test_the_previous_definition_is_the_hand_written_down(revision, function):
    by_hand = function_definition((VERSIONS / f"{revision}.down.sql").read_text(), function)
    assert by_hand is not None
    assert previous_function_definition(str(VERSIONS / f"{revision}.py"), function) == by_hand


def test_a_definition_is_taken_whole_and_as_create_or_replace():
    sql = """CREATE INDEX x ON t (a);
CREATE FUNCTION f(a int) RETURNS int LANGUAGE sql AS $body$ SELECT a; $body$;
CREATE FUNCTION g() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;
CREATE OR REPLACE FUNCTION f(a int) RETURNS int LANGUAGE sql AS $$ SELECT a + 1; $$ IMMUTABLE;
SELECT 1;"""
    assert function_definition(sql, "f") == \
        "CREATE OR REPLACE FUNCTION f(a int) RETURNS int LANGUAGE sql AS $$ SELECT a + 1; $$ IMMUTABLE;"
    assert function_definition(sql, "g") == "CREATE OR REPLACE FUNCTION g() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;"
    assert function_definition(sql, "h") is None


def test_a_function_no_earlier_revision_defines_is_an_error():
    with pytest.raises(LookupError, match="no revision before 0001 defines function bus_claim"):
        previous_function_definition(str(VERSIONS / "0001_initial.py"), "bus_claim")
