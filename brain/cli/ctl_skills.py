"""`brainctl skills check [PATH]` and `brainctl skills history NAME`."""
from __future__ import annotations

import argparse

from brain.sql import queries_beside

Q = queries_beside(__file__, "ctl_skills.sql")


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = sub.add_parser("check", help="validate one skill file or folder, or all of them, as the loader would")
    check.add_argument("path", nargs="?", help="a SKILL.md, a skill folder, or the skills folder (default)")
    history = sub.add_parser("history", help="every version of a skill ever loaded")
    history.add_argument("name")
    history.add_argument("--json", action="store_true")
    history.add_argument("--show", metavar="HASH", help="print the text of the version with this hash prefix")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from brain.config import settings
    from brain.errors import BrainError
    from brain.skills.parse import SkillInvalid, parse_skill

    cfg = settings()
    if args.action == "check":
        target = Path(args.path) if args.path else cfg.skills_dir
        if target.is_dir():
            files = [target / "SKILL.md"] if (target / "SKILL.md").exists() else sorted(target.glob("*/SKILL.md"))
        else:
            files = [target]
        if not files or not all(f.exists() for f in files):
            raise BrainError(f"no SKILL.md at {target}")
        bad = 0
        for f in files:
            try:
                skill = parse_skill(f)
                print(f"ok    {skill.name:<16} {skill.content_hash[:12]}  {f}")
            except SkillInvalid as exc:
                bad += 1
                print(f"FAIL  {exc}")
        return 1 if bad else 0

    from brain.cli.common import print_json
    from brain.db.connect import connect_sync

    with connect_sync(cfg, "operator") as conn:
        rows = conn.execute(Q["skill_versions"], (args.name,)).fetchall()
        rejected = conn.execute(Q["skill_rejections"], (args.name,)).fetchall()
    if not rows:
        raise BrainError(f"no versions of skill {args.name!r} were ever loaded")
    if args.show:
        match = [r for r in rows if r[0].startswith(args.show)]
        if not match:
            raise BrainError(f"no version of {args.name} with hash {args.show}")
        print(match[-1][3], end="")
        return 0
    if args.json:
        print_json({"versions": [{"hash": r[0], "loaded_at": r[1], "chars": r[2]} for r in rows],
                    "recent_rejections": [{"at": r[0], "error": r[1]} for r in rejected]})
        return 0
    for h, at, size, _ in rows:
        print(f"{at:%Y-%m-%d %H:%M:%S}  {h[:12]}  {size} chars")
    for at, error in rejected:
        print(f"rejected {at:%Y-%m-%d %H:%M:%S}: {error}")
    return 0
