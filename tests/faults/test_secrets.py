"""A canary secret in every channel and in a connector never appears where a person or a file could see it.

One night through `recon run` as a user runs it, with the demo's systems plus a Stripe-shaped REST
system (bearer token), and every notification channel on (a Slack URL, a webhook token, an SMTP login),
all against real loopback servers. The secrets are used (the API and the servers saw them), and then
the canary is searched for in the command output, in every file the night left (the DuckDB file, every
text column in it, Dagster's storage and logs, dbt's artifacts, the reports) and in the bodies of the
messages sent.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from loopback_api import LoopbackApi, serve
from test_api_examples import EXAMPLES, charge, stripe_route
from test_notifications import HttpReceiver, SmtpReceiver

from dagster_project.config.model import DEMO_CONFIG_PATH, load_config
from ingestion.demo.generator import generate

pytestmark = pytest.mark.slow

CANARY = "CANARY-7f3a9c41"
RECON = Path(sys.executable).parent / "recon"


class LoginSmtpReceiver(SmtpReceiver):
    """The loopback SMTP server, asking for a login (the password is checked, then kept nowhere)."""

    def __init__(self, password: str) -> None:
        super().__init__()
        self.password = password
        self.logins: list[bool] = []

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = auth_data.password.decode() == self.password
        self.logins.append(ok)
        return AuthResult(success=ok)

    def start(self) -> None:
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port, authenticator=self._authenticate,
                                     auth_require_tls=False, auth_required=True)
        self.controller.start()


def config_yaml() -> str:
    config = yaml.safe_load(DEMO_CONFIG_PATH.read_text())
    config["systems"]["stripe"] = yaml.safe_load((EXAMPLES / "stripe.yaml").read_text())["systems"]["stripe"]
    for channel in config["notifications"]["channels"].values():
        channel["enabled"] = True
    config["notifications"]["channels"]["email"].update(starttls=False)
    config["notifications"]["digest"]["immediate_severities"] = ["critical", "high", "medium", "low"]
    return yaml.safe_dump(config, sort_keys=False)


def test_a_canary_secret_appears_in_no_output_file_table_or_message(tmp_path: Path) -> None:
    http, smtp = HttpReceiver(), LoginSmtpReceiver(f"pw-{CANARY}")
    stripe = LoopbackApi(routes={"/v1/charges": stripe_route}, token=f"rk_{CANARY}")
    http.start()
    smtp.start()
    server = serve(stripe)
    try:
        day = dt.date(2026, 10, 1)
        at = dt.datetime(2026, 10, 1, 9, tzinfo=dt.UTC)
        stripe.records = [charge(900001, 1000, at), charge(900002, 2500, at, [(500, at + dt.timedelta(hours=1))])]
        rules = load_config(DEMO_CONFIG_PATH, env={"RECON_HOME": str(tmp_path / "home")}).rules
        generate(tmp_path / "data", orders=120, days=1, seed=4, start_date=day,
                 rules=rules.model_dump(mode="json", by_alias=True))
        (tmp_path / "recon.yaml").write_text(config_yaml())
        env = {**os.environ, "RECON_HOME": str(tmp_path / "home"), "RECON_DEMO_DATA": str(tmp_path / "data"),
               "DAGSTER_HOME": str(tmp_path / "home" / "dagster_home"), "RECON_CONFIG": str(tmp_path / "recon.yaml"),
               "STRIPE_API_BASE": stripe.base, "STRIPE_SECRET_KEY": f"rk_{CANARY}",
               "RECON_SLACK_WEBHOOK_URL": f"http://127.0.0.1:{http.port}/slack/{CANARY}",
               "RECON_WEBHOOK_URL": f"http://127.0.0.1:{http.port}/hook", "RECON_WEBHOOK_TOKEN": f"tok-{CANARY}",
               "RECON_SMTP_HOST": f"127.0.0.1:{smtp.port}", "RECON_SMTP_USER": "recon",
               "RECON_SMTP_PASSWORD": f"pw-{CANARY}"}
        outputs = []
        for args in (["run", "--date", str(day)], ["report", "--date", str(day)], ["summary", "--date", str(day)],
                     ["exceptions", "list", "--json"], ["config", "validate"]):
            done = subprocess.run([str(RECON), *args], env=env, capture_output=True, text=True, timeout=900)
            assert done.returncode == 0, done.stdout + done.stderr
            outputs.append(done.stdout + done.stderr)
    finally:
        server.shutdown()
        server.server_close()
        http.stop()
        smtp.stop()

    # The secrets were used: the API was read with the token, every channel delivered.
    assert stripe.calls, "the REST system was never read"
    assert http.on(f"/slack/{CANARY}") and http.on("/hook") and smtp.messages and all(smtp.logins)
    assert http.on("/hook")[0]["headers"]["Authorization"] == f"Bearer tok-{CANARY}"

    # ... and appear nowhere else.
    assert not [o for o in outputs if CANARY in o]
    bodies = [str(p["json"]) for p in http.posts] + [m.as_string() for m in smtp.messages]
    assert not [b for b in bodies if CANARY in b]
    leaked = [str(p.relative_to(tmp_path)) for p in sorted(tmp_path.rglob("*"))
              if p.is_file() and CANARY.encode() in p.read_bytes()]
    assert leaked == []
    con = duckdb.connect(str(tmp_path / "home" / "warehouse.duckdb"), read_only=True)
    try:
        columns = con.execute("select table_schema, table_name, column_name from information_schema.columns "
                              "where data_type in ('VARCHAR', 'JSON')").fetchall()
        assert len(columns) > 100
        found = [f"{s}.{t}.{c}" for s, t, c in columns
                 if con.execute(f'select count(*) from "{s}"."{t}" where "{c}"::varchar like ?',
                                [f"%{CANARY}%"]).fetchall()[0][0]]
    finally:
        con.close()
    assert found == []
