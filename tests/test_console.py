"""The local console: piped and interactive input, switching member and channel, framed posts,
and the real `scrutiny-bot console` reading standard input."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy.orm import Session

from bot.app import ScrutinyApp
from bot.db import make_engine, make_session_factory, migrate
from bot.domain import Marking, Platform
from bot.models import Channel
from bot.platforms.console.app import PROMPT, Console, run_console
from tests.conftest import NOW
from tests.factories import Seed, seed_collaboration


def console_run(
    app: ScrutinyApp,
    text: str,
    member: str | None = "sian-hughes",
    channel: str | None = None,
    *,
    interactive: bool = False,
) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = run_console(
        app,
        member,
        channel,
        io.StringIO(text),
        stdout,
        stderr=stderr,
        interactive=interactive,
        clock=lambda: NOW,
    )
    return code, stdout.getvalue(), stderr.getvalue()


def add_console_channel(session: Session, seed: Seed) -> None:
    session.add(
        Channel(
            slug="console-torfaen",
            name="Console – Torfaen",
            platform=Platform.CONSOLE,
            external_id="console-torfaen",
            partner=seed.partners["torfaen"],
            clearance=Marking.OFFICIAL,
            exempt_access=False,
        )
    )
    session.commit()


def test_piped_commands_print_each_reply_and_a_blank_line(app: ScrutinyApp, seed: Seed) -> None:
    code, out, err = console_run(
        app, "/scrutiny actions overdue torfaen\n\n# a comment\nmeetings strategic\n"
    )
    assert code == 0 and err == ""
    replies = out.split("\n\n")
    assert replies[0].startswith(
        "Actions: overdue · Torfaen County Borough Council (showing 1–2 of 2)"
    )
    assert "TP-003" in replies[0]
    assert replies[1].startswith("Next meetings of the Strategic Board")
    assert out.endswith("\n\n") and PROMPT not in out


def test_plain_text_is_a_mention(app: ScrutinyApp, seed: Seed) -> None:
    _code, out, _err = console_run(
        app, "what did the strategic board decide about the data centre move?\n"
    )
    assert "SB-2026-031" in out


def test_switching_member_and_channel(app: ScrutinyApp, seed: Seed, session: Session) -> None:
    add_console_channel(session, seed)
    script = (
        "action TP-003\n:channel console-torfaen\naction TP-003\n"
        ":channel -\n:as tom-price\naction TP-003\n"
    )
    _code, out, _err = console_run(app, script)
    first, in_channel, tom = [r for r in out.split("\n\n") if r]
    assert first.startswith("TP-003  Exempt contract renewal")
    assert in_channel.startswith("TP-003 exists, but this channel is not cleared to see it.")
    assert "you are not cleared to see it" in tom


def test_channel_flag_combines_clearance(app: ScrutinyApp, seed: Seed, session: Session) -> None:
    add_console_channel(session, seed)
    _code, out, _err = console_run(app, "actions overdue torfaen\n", channel="console-torfaen")
    assert "1 more was left out because this channel isn't cleared for it" in out


def test_a_chat_platform_channel_is_refused_naming_console_channels(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    add_console_channel(session, seed)
    code, out, err = console_run(app, "actions\n", channel="srs-torfaen")
    assert code == 2 and out == ""
    assert "“srs-torfaen” is a slack channel" in err and "console-torfaen" in err
    _code, out, _err = console_run(app, ":channel nowhere\n")
    assert "There is no channel “nowhere”. Console channels: console-torfaen." in out


def test_unknown_member_lists_close_matches_and_exits_2(app: ScrutinyApp, seed: Seed) -> None:
    code, out, err = console_run(app, "actions\n", member="sian-hughs")
    assert code == 2 and out == ""
    assert "There is no active member “sian-hughs”. Did you mean: sian-hughes?" in err
    _code, out, _err = console_run(app, ":as nobody-at-all\nactions\n")
    assert "There is no active member “nobody-at-all”" in out and "Actions" in out


def test_piped_input_needs_a_member(app: ScrutinyApp, seed: Seed) -> None:
    code, _out, err = console_run(app, "actions\n", member=None)
    assert code == 2 and "--as MEMBER" in err


def test_interactive_session_picks_a_member_and_prompts(app: ScrutinyApp, seed: Seed) -> None:
    code, out, _err = console_run(
        app,
        "nobody\n2\n/scrutiny action TP-001\n:wat\n:quit\naction TP-002\n",
        member=None,
        interactive=True,
    )
    assert code == 0
    assert "Who are you?" in out and " 2. eleri-jones" in out
    assert "There is no active member “nobody”" in out
    assert "You are Eleri Jones (eleri-jones), in a direct message with the bot." in out
    assert out.count(PROMPT) == 3  # after :quit nothing more is read
    assert "TP-001  Migrate file shares to SharePoint Online" in out
    assert "Unknown console command “:wat”" in out
    assert "TP-002" not in out


def test_show_post_frames_a_channel_post(app: ScrutinyApp, seed: Seed) -> None:
    stdout = io.StringIO()
    Console(app, io.StringIO(), stdout).show_post("console-torfaen", "Weekly digest\n  TP-001 late")
    lines = stdout.getvalue().splitlines()
    assert lines[0].startswith("┌─ post to console-torfaen ─")
    assert lines[1:3] == ["│ Weekly digest", "│   TP-001 late"]
    assert lines[3].startswith("└─")


def test_real_console_command_reads_standard_input(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'console.db'}"
    engine = make_engine(url)
    migrate(engine)
    with make_session_factory(engine)() as session:
        seed_collaboration(session)
        session.commit()
    engine.dispose()
    script = Path(sys.executable).with_name("scrutiny-bot")
    fallback = [sys.executable, "-c", "from bot.cli import main; main()"]
    command = [str(script)] if script.exists() else fallback
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "TEAMS_", "GRAPH_"))}
    env.update(DATABASE_URL=url, SCRUTINY_LANGUAGE="en", LOG_LEVEL="WARNING")

    def console(member: str, stdin: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, "console", "--as", member],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=120,
            check=False,
        )

    result = console(
        "sian-hughes", "/scrutiny action TP-001\n/scrutiny decisions strategic since 2026-01-01\n"
    )
    assert result.returncode == 0, result.stderr
    assert "TP-001  Migrate file shares to SharePoint Online" in result.stdout
    assert "SB-2026-031" in result.stdout and PROMPT not in result.stdout
    bad = console("nobody", "")
    assert bad.returncode == 2 and "There is no active member “nobody”" in bad.stderr
