"""The embedded default database: a private PostgreSQL cluster in a data folder.

It listens only on a Unix socket inside its own folder, so several clusters (a
developer's, the test session's) never collide on a port. PostgreSQL refuses to
run as root, so when we are root the server runs as an unprivileged system user.
The platform connects as ``golos``, which owns its database but is no superuser.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

SERVER_USER_CANDIDATES = ("postgres", "golos")
ADMIN_ROLE = "golos_admin"
APP_ROLE = "golos"
DATABASE = "golos"
# Unix socket paths are limited to 107 bytes on Linux.
MAX_SOCKET_PATH = 107


class PostgresNotFound(RuntimeError):
    pass


def find_bin_dir(major: str | None = None) -> Path:
    """The server binaries: of ``major`` when a cluster needs that version, else the newest."""
    installed = {
        p.parent.parent.name: p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/postgres")
    }
    if major is not None:
        if major in installed:
            return installed[major]
        raise PostgresNotFound(
            f"this cluster was made by PostgreSQL {major}, whose binaries are not installed "
            f"(apt-get install postgresql-{major})"
        )
    if installed:
        return installed[max(installed, key=lambda v: int(v) if v.isdigit() else 0)]
    if pg_config := shutil.which("pg_config"):
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        candidate = Path(out.stdout.strip())
        if (candidate / "postgres").exists():
            return candidate
    raise PostgresNotFound(
        "PostgreSQL server binaries not found: install them (apt-get install postgresql) "
        "or set GOLOS_DATABASE_URL"
    )


def _server_user(create: bool = True) -> pwd.struct_passwd | None:
    """None when we may run the server as ourselves (i.e. we are not root)."""
    if os.geteuid() != 0:
        return None
    for name in SERVER_USER_CANDIDATES:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    if not create:
        return None
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "golos"],
        check=True,
    )
    return pwd.getpwnam("golos")


def _check_reachable(folder: Path, user: pwd.struct_passwd) -> None:
    """The server user must be able to walk down to its folder."""
    for parent in reversed(folder.parents):
        info = parent.stat()
        if info.st_uid == user.pw_uid:
            continue
        if not info.st_mode & stat.S_IXOTH:
            raise RuntimeError(
                f"the database server runs as user {user.pw_name}, who cannot enter {parent}; "
                f"set GOLOS_DATA_DIR to a folder outside it (e.g. /var/lib/golos)"
            )


def _conf_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


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

    def _major(self) -> str | None:
        version = self.data / "PG_VERSION"
        return version.read_text().strip() if version.exists() else None

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        user = _server_user()
        # A bare environment: the server must not inherit the platform's secrets,
        # nor root's supplementary groups.
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"}
        result = subprocess.run(
            [str(find_bin_dir(self._major()) / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            user=user.pw_uid if user else None,
            group=user.pw_gid if user else None,
            extra_groups=[] if user else None,
            env=env,
            cwd="/",
        )
        if check and result.returncode != 0:
            who = f" (as user {user.pw_name})" if user else ""
            raise RuntimeError(f"{args[0]} failed{who}: {result.stderr.strip()}")
        return result

    def initialised(self) -> bool:
        return (self.data / "PG_VERSION").exists()

    def init(self) -> None:
        socket = self.socket_dir / ".s.PGSQL.5432"
        if len(str(socket)) > MAX_SOCKET_PATH:
            raise RuntimeError(
                f"the data folder path is too long for a Unix socket ({socket}); "
                "set GOLOS_DATA_DIR to a shorter path"
            )
        self.folder.mkdir(parents=True, exist_ok=True)
        user = _server_user()
        if user:
            _check_reachable(self.folder, user)
            os.chown(self.folder, user.pw_uid, user.pw_gid)
        self.folder.chmod(0o700)
        self._run(
            "initdb", "-D", str(self.data), "-U", ADMIN_ROLE, "--auth=trust",
            "--encoding=UTF8", "--locale=C.UTF-8",
        )  # fmt: skip
        settings = ["max_connections = 100", "unix_socket_permissions = 0700"]
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
            # Socket-only, whatever the configuration file says.
            options = (
                f"-c listen_addresses='' "
                f"-c unix_socket_directories={_conf_string(str(self.socket_dir))}"
            )
            result = self._run(
                "pg_ctl", "-D", str(self.data), "-l", str(self.log_file), "-o", options,
                "-w", "-t", "60", "start", check=False,
            )  # fmt: skip
            if result.returncode != 0:
                log = self.log_file.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"PostgreSQL did not start: {result.stderr.strip()}\n{log}")
        self._ensure_database()

    def _psql(self, sql: str) -> str:
        return self._run(
            "psql", "-h", str(self.socket_dir), "-U", ADMIN_ROLE, "-d", "postgres",
            "-v", "ON_ERROR_STOP=1", "-tAc", sql,
        ).stdout.strip()  # fmt: skip

    def _ensure_database(self) -> None:
        if self._psql(f"SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}'") != "1":
            self._psql(f"CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB")
        if self._psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'") != "1":
            self._psql(f"CREATE DATABASE {DATABASE} OWNER {APP_ROLE}")

    def dsn(self) -> str:
        return f"postgresql://{APP_ROLE}@/{DATABASE}?host={self.socket_dir}"

    def admin_dsn(self) -> str:
        """The cluster's superuser, on its maintenance database (``golos db warm-wal``)."""
        return f"postgresql://{ADMIN_ROLE}@/postgres?host={self.socket_dir}"

    def stop(self) -> None:
        if self.running():
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def status(self) -> str:
        if not self.initialised():
            return f"no cluster in {self.folder}"
        state = "running" if self.running() else "stopped"
        return f"{state}: {self.folder} (socket in the same folder)"
