"""The live set of skills: loaded at start, reloaded on every file change.

An edit is in effect on the next model call. An edit that does not parse keeps the last
good version and is reported (one log line naming the file and the problem, and a row in
skill_rejections); the service never stops for it. Editors that save by writing a temp
file and renaming it, or that truncate and write twice, produce several events: events are
gathered per file until it has been quiet for QUIET_S, then the whole file is re-read once,
so a half-written state is not mistaken for the operator's edit. An unchanged hash is not
a new version.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from brain.db.types import Conn
from brain.errors import BrainError
from brain.skills.parse import SkillInvalid, parse_skill
from brain.skills.skill import Skill
from brain.sql import queries_beside

if TYPE_CHECKING:
    from watchdog.events import FileSystemEvent
    from watchdog.observers.api import BaseObserver

log = logging.getLogger("brain.skills")
Q = queries_beside(__file__, "registry.sql")


CHANGES = {"created", "modified", "moved", "deleted", "closed"}
# How long a file must go without events before it is read: long enough to cover an
# editor's truncate-then-write, short enough that an edit is live well within a second.
QUIET_S = 0.15


class UnknownSkill(BrainError):
    """No skill with this name is loaded."""


class SkillRegistry:
    def __init__(self, skills_dir: Path) -> None:
        self.dir = skills_dir
        self._skills: dict[str, Skill] = {}
        self._errors: dict[str, str] = {}
        self._lock = threading.Lock()
        self._observer: BaseObserver | None = None
        self._pending: dict[Path, float] = {}
        self._wake = threading.Condition()
        self._settler: threading.Thread | None = None
        self._stopping = False
        # (kind, payload) rows waiting to be written to the database by the service.
        self.records: queue.SimpleQueue[tuple[str, tuple]] = queue.SimpleQueue()

    # ------------------------------------------------------------------ reading
    def get(self, name: str) -> Skill:
        with self._lock:
            try:
                return self._skills[name]
            except KeyError:
                raise UnknownSkill(f"no skill named {name!r} under {self.dir}") from None

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._skills)

    def errors(self) -> dict[str, str]:
        with self._lock:
            return dict(self._errors)

    # ------------------------------------------------------------------ loading
    def load_all(self) -> None:
        if not self.dir.is_dir():
            raise BrainError(f"skills folder not found: {self.dir}")
        for path in sorted(self.dir.glob("*/SKILL.md")):
            self.reload(path)

    def reload(self, path: Path) -> None:
        name = path.parent.name
        if not path.exists():
            with self._lock:
                gone = self._skills.pop(name, None)
            if gone is not None:
                log.warning("skill %s deleted (%s); calls to it now fail until it is restored", name, path)
                self.records.put(("rejection", (name, str(path), "skill file deleted")))
            return
        try:
            skill = parse_skill(path)
        except SkillInvalid as exc:
            with self._lock:
                kept = name in self._skills
            # Logged and queued before it is visible in errors(), so whoever sees the error
            # can also find its log line and its row.
            log.error("skill edit rejected, %s: %s", "keeping the last good version" if kept else "not loaded", exc)
            self.records.put(("rejection", (name, str(path), str(exc))))
            with self._lock:
                self._errors[str(path)] = str(exc)
            return
        with self._lock:
            self._errors.pop(str(path), None)
            current = self._skills.get(name)
            if current is not None and current.content_hash == skill.content_hash:
                return
            self._skills[name] = skill
        log.info("skill %s loaded (%s)", name, skill.content_hash[:12])
        self.records.put(("version", (name, skill.content_hash, skill.text)))

    # ------------------------------------------------------------------ watching
    def start(self) -> None:
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        registry = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                # Reading a file is an event too (opened, closed without writing): reacting to
                # those would reload forever, since every reload reads the file.
                if event.event_type not in CHANGES:
                    return
                for attr in ("src_path", "dest_path"):
                    raw = getattr(event, attr, "") or ""
                    path = Path(raw if isinstance(raw, str) else raw.decode())
                    if path.name == "SKILL.md":
                        registry._touched(path)
                    elif event.is_directory and path.parent == registry.dir:
                        registry._touched(path / "SKILL.md")

        self._stopping = False
        self._settler = threading.Thread(target=self._settle_loop, name="skills-settle", daemon=True)
        self._settler.start()
        self._observer = Observer()
        self._observer.schedule(Handler(), str(self.dir), recursive=True)
        self._observer.daemon = True
        self._observer.start()

    def _touched(self, path: Path) -> None:
        with self._wake:
            self._pending[path] = time.monotonic() + QUIET_S
            self._wake.notify()

    def _settle_loop(self) -> None:
        """Reload each touched file once it has been quiet for QUIET_S."""
        while True:
            with self._wake:
                if self._stopping:
                    return
                now = time.monotonic()
                due = [p for p, at in self._pending.items() if at <= now]
                for p in due:
                    del self._pending[p]
                if not due:
                    soonest = min(self._pending.values(), default=now + 1.0)
                    self._wake.wait(timeout=max(soonest - now, 0.005))
                    continue
            for path in due:
                try:
                    self.reload(path)
                except Exception:  # a reload must never kill the watcher
                    log.exception("skill reload failed for %s", path)

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None
        if self._settler is not None:
            with self._wake:
                self._stopping = True
                self._wake.notify()
            self._settler.join(timeout=5)
            self._settler = None

    async def persist(self, conn: Conn) -> int:
        """Write queued versions and rejections (asyncpg connection); returns rows written."""
        written = 0
        while True:
            try:
                kind, row = self.records.get_nowait()
            except queue.Empty:
                return written
            if kind == "version":
                await conn.execute(Q["record_version"], *row)
            else:
                await conn.execute(Q["record_rejection"], *row)
            written += 1
