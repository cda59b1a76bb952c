"""How finished shadow experiments appear in the next optimizer report."""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any


def report_lines(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The 'Shadow experiments' section of the next optimizer report."""
    if not rows:
        return []
    lines = ["", "## Shadow experiments since the last report", ""]
    for r in rows:
        variant = r["variant"] if isinstance(r["variant"], dict) else json.loads(r["variant"])
        if r["status"] == "failed":
            lines.append(f"- experiment {r['id']} on {r['target']} ({json.dumps(variant)}): failed: {r['error']}")
            continue
        res = r["result"] if isinstance(r["result"], dict) else json.loads(r["result"])
        live, var = res["live"]["held_out"], res["variant_run"]["held_out"]
        lines.append(f"- experiment {r['id']} on {r['target']} ({json.dumps(variant)}): **{res['verdict']}** on the "
                     f"held-out period from {res['window']['split']}: return {var['return_pct']:+.2f}% vs live "
                     f"{live['return_pct']:+.2f}%, max drawdown {var['max_drawdown_pct']:.2f}% vs "
                     f"{live['max_drawdown_pct']:.2f}%, trades {var['trades']} vs {live['trades']}")
    return lines
