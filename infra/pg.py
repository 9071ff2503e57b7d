"""The embedded default database: a private PostgreSQL cluster in a data folder.

It listens only on a Unix socket inside its own folder, so several clusters (a
developer's, the test session's) never collide on a port. PostgreSQL refuses to
run as root, so when we are root the server runs as an unprivileged system user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

SERVER_USER_CANDIDATES = ("postgres", "golos")


class PostgresNotFound(RuntimeError):
    pass


def find_bin_dir() -> Path:
    """The newest installed PostgreSQL server's binaries."""
    if pg_config := shutil.which("pg_config"):
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        candidate = Path(out.stdout.strip())
        if (candidate / "postgres").exists():
            return candidate
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if versions:
        return versions[-1].parent
    raise PostgresNotFound(
        "PostgreSQL server binaries not found: install them (apt-get install postgresql) "
        "or set GOLOS_DATABASE_URL"
    )


def _server_user() -> pwd.struct_passwd | None:
    """None when we may run the server as ourselves (i.e. we are not root)."""
    if os.geteuid() != 0:
        return None
    for name in SERVER_USER_CANDIDATES:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "golos"],
        check=True,
    )
    return pwd.getpwnam("golos")


@dataclass
class EmbeddedPostgres:
    folder: Path
    fast_unsafe: bool = False  # fsync off: for throwaway test clusters only

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def socket_dir(self) -> Path:
        return self.folder

    @property
    def log_file(self) -> Path:
        return self.folder / "server.log"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        user = _server_user()
        result = subprocess.run(
            [str(find_bin_dir() / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            user=user.pw_uid if user else None,
            group=user.pw_gid if user else None,
            env={**os.environ, "LC_ALL": "C.UTF-8"},
            cwd="/",
        )
        if check and result.returncode != 0:
            who = f" (as user {user.pw_name})" if user else ""
            raise RuntimeError(f"{args[0]} failed{who}: {result.stderr.strip()}")
        return result

    def initialised(self) -> bool:
        return (self.data / "PG_VERSION").exists()

    def init(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        user = _server_user()
        if user:
            os.chown(self.folder, user.pw_uid, user.pw_gid)
        self.folder.chmod(0o700)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "golos",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
        )
        settings = [
            "listen_addresses = ''",
            f"unix_socket_directories = '{self.socket_dir}'",
            "unix_socket_permissions = 0700",
            "max_connections = 100",
        ]
        if self.fast_unsafe:
            settings += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        with open(self.data / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write("\n# golos embedded cluster\n" + "\n".join(settings) + "\n")

    def running(self) -> bool:
        if not self.initialised():
            return False
        return self._run("pg_ctl", "-D", str(self.data), "status", check=False).returncode == 0

    def start(self) -> None:
        """Initialise if needed, start if stopped, and make sure the database exists."""
        if not self.initialised():
            self.init()
        if not self.running():
            result = self._run(
                "pg_ctl",
                "-D",
                str(self.data),
                "-l",
                str(self.log_file),
                "-w",
                "-t",
                "60",
                "start",
                check=False,
            )
            if result.returncode != 0:
                log = (
                    self.log_file.read_text(errors="replace")[-2000:]
                    if self.log_file.exists()
                    else ""
                )
                raise RuntimeError(f"PostgreSQL did not start: {result.stderr.strip()}\n{log}")
        self._ensure_database()

    def _ensure_database(self) -> None:
        exists = self._run(
            "psql",
            "-h",
            str(self.socket_dir),
            "-U",
            "golos",
            "-d",
            "postgres",
            "-tAc",
            "SELECT 1 FROM pg_database WHERE datname = 'golos'",
        ).stdout.strip()
        if exists != "1":
            self._run("createdb", "-h", str(self.socket_dir), "-U", "golos", "golos")

    def stop(self) -> None:
        if self.running():
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def status(self) -> str:
        if not self.initialised():
            return f"no cluster in {self.folder}"
        state = "running" if self.running() else "stopped"
        return f"{state}: {self.folder} (socket in the same folder)"
