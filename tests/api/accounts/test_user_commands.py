"""``golos user add|disable|enable|list``: accounts made and changed from the
command line, each change audited with the operating-system account that ran it."""

from __future__ import annotations

import psycopg
from typer.testing import CliRunner

from api import cli
from api.accounts import service
from api.accounts.schemas import Role
from api.audit import service as audit

PASSWORD = "correct horse battery staple"
runner = CliRunner()


def test_user_add_reads_the_password_from_stdin_and_audits_the_change(
    conn: psycopg.Connection,
) -> None:
    made = runner.invoke(
        cli.app, ["user", "add", "Olga", "--role", "observer", "--password-stdin"], input=PASSWORD
    )
    assert made.exit_code == 0, made.output
    assert "created observer olga" in made.output
    assert service.login(conn, "olga", PASSWORD, session_hours=1).startswith("golos_s_")
    entry = audit.recent(conn, 1)[0]
    assert (entry.actor.startswith("cli:"), entry.action, entry.subject) == (
        True,
        "user.add",
        "user:olga",
    )


def test_user_add_asks_for_the_password_twice(conn: psycopg.Connection) -> None:
    made = runner.invoke(
        cli.app, ["user", "add", "ivan", "--role", "analyst"], input=f"{PASSWORD}\n{PASSWORD}\n"
    )
    assert made.exit_code == 0, made.output
    assert PASSWORD not in made.output  # hidden
    assert [u.username for u in service.list_users(conn)] == ["ivan"]


def test_user_add_refuses_a_short_password_a_taken_name_and_an_unknown_role(
    conn: psycopg.Connection,
) -> None:
    short = runner.invoke(
        cli.app, ["user", "add", "ivan", "--role", "analyst", "--password-stdin"], input="short"
    )
    assert short.exit_code == 1
    assert "refused: password: must be at least 12 characters" in short.output
    runner.invoke(
        cli.app, ["user", "add", "ivan", "--role", "analyst", "--password-stdin"], input=PASSWORD
    )
    taken = runner.invoke(
        cli.app, ["user", "add", "ivan", "--role", "admin", "--password-stdin"], input=PASSWORD
    )
    assert taken.exit_code == 1 and "is taken" in taken.output
    voter = runner.invoke(
        cli.app, ["user", "add", "anna", "--role", "voter", "--password-stdin"], input=PASSWORD
    )
    assert voter.exit_code == 2 and "is not one of observer, analyst, admin" in voter.output


def test_user_disable_ends_logins_and_enable_restores_them(conn: psycopg.Connection) -> None:
    service.add_user(conn, "ivan", Role.ANALYST, PASSWORD, actor="test")
    conn.commit()
    session = service.login(conn, "ivan", PASSWORD, session_hours=1)
    conn.commit()

    disabled = runner.invoke(cli.app, ["user", "disable", "ivan"])
    assert disabled.exit_code == 0, disabled.output
    assert service.session_principal(conn, session) is None
    listed = runner.invoke(cli.app, ["user", "list"])
    assert listed.output.startswith("ivan\tanalyst\tdisabled\t")

    enabled = runner.invoke(cli.app, ["user", "enable", "ivan"])
    assert enabled.exit_code == 0, enabled.output
    assert "ivan\tanalyst\tactive\t" in runner.invoke(cli.app, ["user", "list"]).output
    assert [e.action for e in reversed(audit.recent(conn, 2))] == ["user.disable", "user.enable"]

    missing = runner.invoke(cli.app, ["user", "disable", "nobody"])
    assert missing.exit_code == 1 and "no account 'nobody'" in missing.output
