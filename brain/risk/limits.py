"""Hard caps. Constants in code on purpose: no skill, prompt, setting or model answer can
raise them. Changing one is a code change, reviewed and tested like any other."""
from __future__ import annotations

MAX_RISK_PER_TRADE = 0.02        # loss at the stop, as a fraction of equity
MAX_POSITION_FRACTION = 0.10     # notional of one position, as a fraction of equity
MAX_OPEN_POSITIONS = 5
DAILY_LOSS_BLOCK = -0.05         # today's P&L / day-start equity at or below this blocks new entries
MAX_DRAWDOWN = 0.15              # drawdown from the high-water mark that halts trading (watchdog, L4)
MAX_STOP_DISTANCE = 0.20         # a stop further than 20% from entry is not a stop
MIN_REWARD_RISK = 1.0            # take-profit must be at least as far as the stop
KELLY_FRACTION = 0.5             # Half-Kelly

STANCE_RISK_SCALE = {"risk_on": 1.0, "neutral": 0.5, "risk_off": 0.25}  # scales the per-trade risk budget
