"""What the router tests share: the skill they call, its inputs and a good answer, a router
over given routes, and the ledger as rows."""
from __future__ import annotations

from brain.router.prices import PriceTable
from brain.router.router import Router
from brain.skills.parse import parse_skill
from tests.support.paths import REPO

SKILL = parse_skill(REPO / "skills" / "regime" / "SKILL.md")
PHILOSOPHY = (REPO / "context" / "philosophy.md").read_text()
GOOD = {"regime": "ranging", "stance": "neutral", "confidence": 0.6, "rationale": "ADX below 25."}
INPUTS = {"symbol": "AAPL", "computed_regime": "ranging", "composite": 0.1,
          "indicators": {"adx": 18.0, "vol_pct": 0.4}}


def make(pool, routes, **kw) -> Router:
    return Router(pool, routes, PHILOSOPHY, PriceTable(), **kw)


async def call(router: Router, *args):
    """A call, with the zero-cost rows it booked written out so the ledger can be read."""
    answer = await router.call("regime", SKILL, *args)
    await router.flush_ledger()
    return answer


def ledger(db):
    return db.sql("SELECT route, model, outcome, error_class, input_tokens, output_tokens, cache_read_tokens, "
                  "cache_write_tokens, cost_usd::float8, skill_hash FROM llm_cost_ledger ORDER BY id")

