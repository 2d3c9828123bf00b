"""A real PostgreSQL server for a test: initdb into a temporary folder, started on a free loopback port.

The server binaries are on the machine (PostgreSQL 15); a test that needs one skips with the reason
when they are not. As root, the server runs as `nobody` (initdb refuses root).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

PG_BIN = Path("/usr/lib/postgresql/15/bin")
USER, PASSWORD = "recon", "s3cret-pw"


@dataclass(frozen=True)
class Server:
    port: int
    user: str = USER
    password: str = PASSWORD

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def postgres_server(tmp: Path) -> Iterator[Server]:
    """Start a server for the body; stopped (immediate) after it."""
    initdb = shutil.which("initdb") or (str(PG_BIN / "initdb") if (PG_BIN / "initdb").exists() else None)
    if initdb is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    bindir = Path(initdb).parent
    run_as: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root: run the server as 'nobody' in a folder it can reach
        run_as = ["runuser", "-u", "nobody", "--"]
        root = Path(tempfile.mkdtemp(prefix="recon-pg-"))
        os.chmod(root, 0o777)
    else:
        root = tmp / "pg"
        root.mkdir(parents=True)
    data, pwfile, log = root / "data", root / "pw", root / "log"
    pwfile.write_text(PASSWORD + "\n")
    os.chmod(pwfile, 0o644)
    subprocess.run([*run_as, str(bindir / "initdb"), "-D", str(data), "-U", USER, "--pwfile", str(pwfile),
                    "-A", "scram-sha-256", "--locale=C", "-E", "UTF8"], check=True, capture_output=True)
    port = free_port()
    subprocess.run([*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-o",
                    f"-h 127.0.0.1 -p {port} -k {root}", "start"], check=True, capture_output=True)
    try:
        yield Server(port)
    finally:
        subprocess.run([*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        if run_as:
            shutil.rmtree(root, ignore_errors=True)
