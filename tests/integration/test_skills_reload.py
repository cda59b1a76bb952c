"""Skills edited while the service runs: in effect on the next call within 1 s; a broken
edit keeps the last good version and is recorded; editors that rename or write twice work."""
from __future__ import annotations

import os
import shutil
import time

import asyncpg
import pytest

from brain.skills.registry import SkillRegistry, UnknownSkill
from tests.support.paths import REPO
from tests.support.waiting import wait_for


@pytest.fixture
def skills(tmp_path):
    d = tmp_path / "skills"
    shutil.copytree(REPO / "skills", d)
    reg = SkillRegistry(d)
    reg.load_all()
    reg.start()
    yield d, reg
    reg.stop()


def within_a_second(predicate):
    """Wait for an edit to be in effect as the registry promises: within a second."""
    return wait_for(predicate, timeout=1.0, interval=0.01)


def test_an_edit_is_in_effect_on_the_next_call_within_a_second(skills):
    d, reg = skills
    before = reg.get("regime").content_hash
    path = d / "regime" / "SKILL.md"
    path.write_text(path.read_text().replace("conservative trading desk", "very conservative trading desk"))
    start = time.monotonic()
    within_a_second(lambda: reg.get("regime").content_hash != before)
    took = time.monotonic() - start
    assert took < 1.0 and "very conservative" in reg.get("regime").persona


def test_a_broken_edit_keeps_the_last_good_version_and_is_reported(skills, caplog):
    d, reg = skills
    good = reg.get("strategist")
    path = d / "strategist" / "SKILL.md"
    path.write_text(path.read_text().replace('"type": "object"', '"type": "objekt"', 1))
    within_a_second(lambda: reg.errors())
    assert reg.get("strategist").content_hash == good.content_hash
    [(where, error)] = reg.errors().items()
    assert where.endswith("strategist/SKILL.md") and "not a valid JSON Schema" in error
    assert any("skill edit rejected" in r.message for r in caplog.records)


def test_rename_saves_and_double_writes(skills):
    d, reg = skills
    path = d / "fact-checker" / "SKILL.md"
    text = path.read_text()
    # An editor that writes a temp file then renames it over the original.
    tmp = d / "fact-checker" / ".SKILL.md.swp"
    tmp.write_text(text.replace("You trust nothing", "You trust nothing at all"))
    os.replace(tmp, path)
    within_a_second(lambda: "at all" in reg.get("fact-checker").persona)
    # One that truncates first and writes twice: the half-written state may be rejected,
    # the final state must win.
    path.write_text("")
    path.write_text(text)
    within_a_second(lambda: reg.get("fact-checker").text == text)


def test_new_folder_adds_a_skill_and_a_deleted_one_is_reported(skills):
    d, reg = skills
    (d / "macro").mkdir()
    src = (d / "regime" / "SKILL.md").read_text().replace("name: regime", "name: macro")
    (d / "macro" / "SKILL.md").write_text(src)
    within_a_second(lambda: "macro" in reg.names())
    shutil.rmtree(d / "macro")
    within_a_second(lambda: "macro" not in reg.names())
    with pytest.raises(UnknownSkill):
        reg.get("macro")


async def test_versions_and_rejections_are_stored(skills, db):
    d, reg = skills
    path = d / "regime" / "SKILL.md"
    path.write_text(path.read_text() + "\nOne more line of persona.\n")
    within_a_second(lambda: "One more line" in reg.get("regime").text)
    (d / "regime" / "SKILL.md").write_text("no front matter")
    within_a_second(lambda: reg.errors())
    conn = await asyncpg.connect(db.url("app"))
    try:
        await reg.persist(conn)
    finally:
        await conn.close()
    assert db.sql("SELECT count(*) FROM skill_versions WHERE name = 'regime'") == [(2,)]
    assert "no YAML front matter" in db.sql("SELECT error FROM skill_rejections")[0][0]
    assert reg.get("regime").text.endswith("One more line of persona.\n")


def test_reading_a_skill_does_not_reload_it(skills):
    d, reg = skills
    for _ in range(5):
        (d / "regime" / "SKILL.md").read_text()
    time.sleep(0.3)
    while not reg.records.empty():
        reg.records.get_nowait()
    time.sleep(0.5)
    assert reg.records.empty(), "reads must not trigger reloads"


def test_skills_check_cli(tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "bad" / "SKILL.md"
    bad.parent.mkdir()
    bad.write_text("---\nname: other\ndescription: x\nmetadata: {agent: x}\n---\n")
    out = subprocess.run([sys.executable, "-m", "brain.cli.ctl_main", "skills", "check", str(bad)], cwd=REPO,
                         capture_output=True, text=True)
    assert out.returncode == 1 and "does not match its folder 'bad'" in out.stdout
    ok = subprocess.run([sys.executable, "-m", "brain.cli.ctl_main", "skills", "check"], cwd=REPO,
                        capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.count("ok ") == 6
