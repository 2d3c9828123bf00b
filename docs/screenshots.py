"""`make screenshots`: the pictures in the README, taken with headless Chromium from a demo run.

1. the first screen of the daily report (``report.png``),
2. an exception as ``recon exceptions show`` prints it, rendered as a terminal page (``exception-show.png``),
3. the Dagster asset graph, from ``dagster-webserver`` on a free loopback port (``asset-graph.png``).

The demo runs first into a scratch home (``.recon/screenshots`` unless ``--home``) when that home has no
report yet, so the pictures never depend on what a developer's own ``.recon`` holds. The browser tests
(tests/test_report_browser.py) import this module and take the same pictures the same way.

    python docs/screenshots.py [--home DIR] [--out docs/images] [--orders N --days N]
"""

from __future__ import annotations

import argparse
import contextlib
import html
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]
REPORT_SIZE = (1280, 900)
TERMINAL_SIZE = (1400, 640)
GRAPH_SIZE = (1400, 860)


class ScreenshotError(RuntimeError):
    """A step of the screenshots failed; the message says which and why."""


def has_chromium() -> bool:
    return Path(CHROMIUM).exists()


def chromium(args: list[str], profile: Path, timeout: float = 120) -> str:
    """Run headless Chromium with a fresh profile folder; return its stdout (the DOM with ``--dump-dom``)."""
    if not has_chromium():
        raise ScreenshotError("Debian's chromium is not installed (apt-get install -y chromium)")
    done = subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise ScreenshotError(f"chromium {' '.join(args)} exited {done.returncode}: {done.stderr[-1500:]}")
    return done.stdout


def screenshot(url: str, out: Path, size: tuple[int, int], profile: Path, wait_ms: int = 2000) -> Path:
    """A PNG of the first ``size`` pixels of a page, after ``wait_ms`` of the page's own (virtual) time."""
    out.parent.mkdir(parents=True, exist_ok=True)
    chromium([f"--window-size={size[0]},{size[1]}", f"--virtual-time-budget={wait_ms}", f"--screenshot={out}", url],
             profile)
    if not out.exists() or out.stat().st_size == 0:
        raise ScreenshotError(f"chromium wrote no screenshot of {url}")
    return out


def terminal_html(command: str, text: str) -> str:
    """A page that shows a command and its output as a terminal does (monospace, dark, no wrapping)."""
    return ("<!doctype html><html><head><meta charset='utf-8'><title>" + html.escape(command) + "</title><style>"
            "body{margin:0;background:#1e2127;color:#dcdfe4;font:13px/1.45 'DejaVu Sans Mono',Menlo,monospace}"
            "pre{margin:0;padding:18px 22px;white-space:pre-wrap} .prompt{color:#98c379} .cmd{color:#e5c07b}"
            "</style></head><body><pre><span class='prompt'>$ </span><span class='cmd'>" + html.escape(command)
            + "</span>\n" + html.escape(text) + "</pre></body></html>")


def demo_env(home: Path) -> dict[str, str]:
    """The environment of a project home: the demo config with its database, data and Dagster instance under it."""
    env = {k: v for k, v in os.environ.items() if k not in ("RECON_CONFIG", "RECON_END_DATE")}
    env.update(RECON_HOME=str(home), RECON_DEMO_DATA=str(home / "demo-data"), DAGSTER_HOME=str(home / "dagster_home"),
               COLUMNS="160", PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    return env


def recon(env: dict[str, str], *args: str, timeout: float = 1800) -> str:
    """Run ``recon ARGS`` in the home of ``env``; its stdout, or an error with its output."""
    done = subprocess.run([str(BIN / "recon"), *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)
    if done.returncode != 0:
        raise ScreenshotError(f"recon {' '.join(args)} exited {done.returncode}:\n{(done.stdout + done.stderr)[-3000:]}")
    return done.stdout


def latest_report(home: Path) -> Path | None:
    """The newest day's report.html under a home, None before the first run."""
    days = sorted((home / "reports").glob("*/report.html"))
    return days[-1] if days else None


def ensure_demo(home: Path, orders: int | None = None, days: int | None = None, echo=print) -> Path:
    """Run ``recon demo`` into ``home`` unless it already holds a report; return the latest report.html."""
    found = latest_report(home)
    if found is not None:
        return found
    home.mkdir(parents=True, exist_ok=True)
    args = ["demo"] + (["--orders", str(orders)] if orders else []) + (["--days", str(days)] if days else [])
    echo(f"running the demo into {home} (recon {' '.join(args)}) ...")
    recon(demo_env(home), *args)
    found = latest_report(home)
    if found is None:
        raise ScreenshotError(f"the demo wrote no report under {home / 'reports'}")
    return found


def shoot_report(report: Path, out: Path, profile: Path) -> Path:
    """The report's first screen."""
    return screenshot(report.as_uri(), out, REPORT_SIZE, profile)


def exception_to_show(env: dict[str, str]) -> str:
    """The exception the owner would look at first: the top of the default queue, one with money at risk."""
    listed = json.loads(recon(env, "exceptions", "list", "--json", "--limit", "200"))["exceptions"]
    if not listed:
        raise ScreenshotError("the demo has no open exception to show")
    with_money = [x for x in listed if x.get("amount_at_risk")]
    return (with_money or listed)[0]["exception_id"]


def shoot_exception(env: dict[str, str], out: Path, profile: Path, exception_id: str | None = None) -> tuple[Path, str]:
    """``recon exceptions show ID`` rendered as a terminal page; returns the PNG and the printed text."""
    exception_id = exception_id or exception_to_show(env)
    short = exception_id[:10]
    text = recon(env, "exceptions", "show", short)
    page = out.with_suffix(".html")
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(terminal_html(f"recon exceptions show {short}", text))
    try:
        screenshot(page.as_uri(), out, TERMINAL_SIZE, profile)
    finally:
        page.unlink(missing_ok=True)
    return out, text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def dagster_webserver(env: dict[str, str], log: Path, timeout: float = 180) -> Iterator[str]:
    """``dagster-webserver`` for the project's workspace on a free loopback port; yields its URL, always stopped."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("w") as out:
        proc = subprocess.Popen([str(BIN / "dagster-webserver"), "-w", str(REPO / "workspace.yaml"),
                                 "-h", "127.0.0.1", "-p", str(port)], cwd=REPO, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + timeout
            query = json.dumps({"query": "{ repositoriesOrError { ... on RepositoryConnection { nodes { name } } } }"})
            while True:
                if proc.poll() is not None:
                    raise ScreenshotError(f"dagster-webserver exited: {log.read_text()[-3000:]}")
                if time.monotonic() > deadline:
                    raise ScreenshotError(f"dagster-webserver did not answer in {timeout:.0f}s: {log.read_text()[-3000:]}")
                try:
                    request = urllib.request.Request(f"{url}/graphql", data=query.encode(), method="POST",
                                                     headers={"Content-Type": "application/json"})
                    with urllib.request.urlopen(request, timeout=10) as response:
                        body = json.loads(response.read())
                    if (body.get("data") or {}).get("repositoriesOrError", {}).get("nodes"):
                        break
                except OSError:
                    pass
                time.sleep(1)
            yield url
        finally:
            stop(proc)


def stop(proc: subprocess.Popen | None) -> None:
    """Stop a process started with ``start_new_session=True`` and all it started (its process group)."""
    if proc is not None and proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def shoot_asset_graph(url: str, out: Path, profile: Path) -> Path:
    """The global asset lineage page of the UI at ``url``."""
    return screenshot(f"{url}/asset-groups", out, GRAPH_SIZE, profile, wait_ms=20000)


def shoot_all(home: Path, out: Path, scratch: Path, orders: int | None = None, days: int | None = None,
              echo=print) -> dict[str, Path]:
    """Every picture, from the demo in ``home`` (run first when missing), into ``out``.

    Args:
        home: the project home of the demo (RECON_HOME).
        out: the folder of the PNGs.
        scratch: a folder for Chromium profiles and the webserver's log.
        orders, days: the demo's size when it has to run (None: the demo's defaults).
        echo: where progress goes.

    Returns:
        The PNG of each picture by name (report, exception, asset_graph).
    """
    report = ensure_demo(home, orders, days, echo)
    env = demo_env(home)
    scratch.mkdir(parents=True, exist_ok=True)
    shots = {"report": shoot_report(report, out / "report.png", scratch / "profile-report")}
    echo(f"  {shots['report']}: the first screen of {report}")
    shots["exception"], _ = shoot_exception(env, out / "exception-show.png", scratch / "profile-exception")
    echo(f"  {shots['exception']}: recon exceptions show")
    with dagster_webserver(env, scratch / "dagster-webserver.log") as url:
        shots["asset_graph"] = shoot_asset_graph(url, out / "asset-graph.png", scratch / "profile-graph")
    echo(f"  {shots['asset_graph']}: the Dagster asset graph")
    return shots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, default=REPO / ".recon" / "screenshots",
                        help="the demo's home (run into it when it has no report yet)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images", help="where the PNGs go")
    parser.add_argument("--orders", type=int, help="demo size when the demo runs (default: the demo's)")
    parser.add_argument("--days", type=int, help="demo days when the demo runs (default: the demo's)")
    args = parser.parse_args(argv)
    try:
        shoot_all(args.home.resolve(), args.out.resolve(), args.home.resolve() / "screenshot-scratch",
                  args.orders, args.days)
    except ScreenshotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
