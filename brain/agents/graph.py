"""Every agent on the bus: who consumes which topic."""
from __future__ import annotations

from brain.agents import executor, recorder, regime, signers, strategist
from brain.agents.context import AgentContext
from brain.bus import Bus

# Model-calling agents claim one message at a time (a model call can take seconds; a batch
# would sit under one lease) and run a few in parallel so symbols do not queue behind each other.
MODEL_CONCURRENCY = 4


def register(bus: Bus, ctx: AgentContext, require_watchdog: bool = True) -> None:
    from brain.signals import live

    bus.consumer("signals", ["market.bar"], live.make_handler(ctx.pool, ctx.settings.strategy_align_threshold), batch=50)
    bus.consumer("regime", ["market.state"], regime.make_handler(ctx), batch=1, concurrency=MODEL_CONCURRENCY)
    bus.consumer("strategist", ["regime.assessment"], strategist.make_handler(ctx), batch=1,
                 concurrency=MODEL_CONCURRENCY)
    bus.consumer("risk_gate", ["trade.proposal"], signers.risk_gate(ctx), batch=1, concurrency=2)
    bus.consumer("fact_checker", ["trade.proposal"], signers.fact_checker(ctx), batch=1, concurrency=2)
    bus.consumer("double_checker", ["trade.proposal"], signers.double_checker(ctx), batch=1, concurrency=2)
    # One executor worker: orders are placed in the order their last signature arrived.
    bus.consumer("executor", ["trade.signature"], executor.make_handler(ctx, require_watchdog), batch=20)
    bus.consumer("recorder", ["cycle.outcome"], recorder.make_handler(ctx), batch=20)
    from brain.optimizer import consumer as optimizer

    # One report at a time; a long model call must not be redone by a second worker.
    bus.consumer("self_optimizer", ["optimizer.request"], optimizer.make_handler(ctx), batch=1, lease_s=600)
