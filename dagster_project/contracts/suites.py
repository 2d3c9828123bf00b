"""A config's GX suites: generated from the config + ``<expectations dir>/overrides.yml``, loaded to run.

Suites belong to the config, not to the repository: each config has its own GX 1.x File Data Context
(:func:`expectations_dir_for`): ``project.expectations_dir`` when the config names one, else
``<state_dir>/expectations``. Only the packaged demo config (``dagster_project/config/demo.yaml``)
uses the repository's committed ``expectations/``, and nothing writes there for another config
(:class:`ProtectedSuitesError`), so two configs whose systems share names never overwrite each
other's suites. Its expectation store holds one suite per stream,
``<dir>/expectations/<system>__<stream>__contract.json``.

The suites are *generated*: :func:`ensure_suites` writes a config's missing or outdated suites before
they run (and says so), ``recon contracts generate`` rewrites them on demand. The committed demo
suites are never rewritten automatically: a demo config change shows up as a stale suite, and
``recon contracts generate`` makes it a reviewable diff. The JSON is written deterministically
(expectation ids are derived from the suite and rule id). To change a rule, edit ``overrides.yml``
and regenerate; a hand edit of the JSON is overwritten by the next ``generate``.

Each expectation's ``meta`` carries what the runner needs: ``rule_id``, ``check``, ``column``,
``blocking`` and, for row-level rules, ``violation_sql`` (see ``rules.py``). GX's own ``severity``
is ``critical`` for blocking rules and ``warning`` for the others.
"""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dagster_project.config.model import DEMO_CONFIG_PATH, ReconConfig
from dagster_project.contracts.rules import Rule, StreamContract, build_contract, load_overrides

# The repository's committed GX context: the packaged demo config's suites, and nobody else's.
EXPECTATIONS_DIR = Path(__file__).resolve().parents[2] / "expectations"
OVERRIDES_FILE = "overrides.yml"
_NAMESPACE = uuid.UUID("3f1d7f5e-2a43-4c44-9a0c-7d2b6c1e5a10")
_GITIGNORE = "# Written by recon: GX's run-time files are not part of the suites.\nuncommitted/\n"


class SuiteNotFoundError(LookupError):
    """A stream's suite is missing and cannot be generated: the contract cannot run, which is a failure."""


class ProtectedSuitesError(ValueError):
    """An attempt to write another config's suites into the repository's committed demo suites."""


@dataclass(frozen=True)
class SuiteWrite:
    """One suite :func:`ensure_suites` wrote: which stream, where, and whether it was new."""

    system: str
    stream: str
    path: Path
    action: str  # "generated" (was absent) or "regenerated" (the config or overrides changed)

    def message(self) -> str:
        why = "" if self.action == "generated" else " (the config or overrides.yml changed)"
        return f"{self.action} contract suite for {self.system}.{self.stream} at {self.path}{why}"


def is_demo_config(config: ReconConfig) -> bool:
    """True for the packaged demo config itself (not a copy of it elsewhere)."""
    return config.source_file is not None and config.source_file.resolve() == DEMO_CONFIG_PATH.resolve()


def expectations_dir_for(config: ReconConfig) -> Path:
    """The GX File Data Context that holds this config's suites.

    Args:
        config: the project config.

    Returns:
        ``project.expectations_dir`` when set (relative to the working directory, like every path of
        the config); else the committed ``expectations/`` for the packaged demo config; else
        ``<state_dir>/expectations``.
    """
    if config.project.expectations_dir:
        return Path(config.project.expectations_dir).expanduser().resolve()
    if is_demo_config(config):
        return EXPECTATIONS_DIR
    return config.state_dir / "expectations"


def is_committed(expectations_dir: Path) -> bool:
    """True for the repository's committed demo suites (never written automatically)."""
    return expectations_dir.resolve() == EXPECTATIONS_DIR.resolve()


def _check_writable(config: ReconConfig, expectations_dir: Path) -> None:
    if is_committed(expectations_dir) and not is_demo_config(config):
        raise ProtectedSuitesError(
            f"{expectations_dir} holds the project's committed demo suites, and {config.source_file or 'this config'}"
            " is not the demo config: its suites live in its own folder (project.expectations_dir, "
            f"default {config.state_dir / 'expectations'})")


def init_context(expectations_dir: Path) -> None:
    """Make ``expectations_dir`` a GX File Data Context (``great_expectations.yml``) if it is not one.

    The context file is the repository's own (stores, Data Docs site), so
    ``gx.get_context(context_root_dir=...)`` opens a config's suites like the demo's.

    Args:
        expectations_dir: the folder (created when missing).
    """
    expectations_dir.mkdir(parents=True, exist_ok=True)
    context_file = expectations_dir / "great_expectations.yml"
    if not context_file.is_file():
        shutil.copyfile(EXPECTATIONS_DIR / "great_expectations.yml", context_file)
    (expectations_dir / "plugins").mkdir(exist_ok=True)
    gitignore = expectations_dir / ".gitignore"
    if not gitignore.is_file():
        gitignore.write_text(_GITIGNORE, encoding="utf-8")


def suites_dir(expectations_dir: Path) -> Path:
    """Where the File Data Context's expectation store keeps the suites."""
    return expectations_dir / "expectations"


def suite_path(expectations_dir: Path, name: str) -> Path:
    return suites_dir(expectations_dir) / f"{name}.json"


def _snake(class_name: str) -> str:
    out = "".join("_" + c.lower() if c.isupper() else c for c in class_name).lstrip("_")
    return out


def _expectation_json(suite: str, rule: Rule) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "rule_id": rule.rule_id,
        "check": rule.check,
        "column": rule.column,
        "blocking": rule.severity == "blocking",
    }
    if rule.violation_sql is not None:
        meta["violation_sql"] = rule.violation_sql
        meta["quarantine"] = rule.quarantine
    return {
        "id": str(uuid.uuid5(_NAMESPACE, f"{suite}/{rule.rule_id}")),
        "type": _snake(rule.expectation_type),
        "kwargs": rule.kwargs,
        "meta": meta,
        "description": rule.description,
        "severity": "critical" if rule.severity == "blocking" else "warning",
    }


def _extra_json(suite: str, index: int, expectation: dict[str, Any]) -> dict[str, Any]:
    """An ``overrides.yml`` expectation as the store writes it: named ``custom:<n>`` unless its meta
    names it, a warning unless ``meta.blocking``."""
    meta = {"rule_id": f"custom:{index + 1}", "check": "custom", "blocking": False, **expectation["meta"]}
    return {
        "id": str(uuid.uuid5(_NAMESPACE, f"{suite}/{meta['rule_id']}")),
        "type": expectation["type"],
        "kwargs": expectation["kwargs"],
        "meta": meta,
        "description": expectation["description"] or expectation["type"],
        "severity": "critical" if meta["blocking"] else "warning",
    }


def suite_json(contract: StreamContract) -> dict[str, Any]:
    """The suite of one stream as GX's expectation store writes it (deterministic)."""
    name = contract.suite_name
    return {
        "name": name,
        "id": str(uuid.uuid5(_NAMESPACE, name)),
        "expectations": [_expectation_json(name, rule) for rule in contract.rules]
        + [_extra_json(name, i, e) for i, e in enumerate(contract.extra_expectations)],
        "meta": {
            "great_expectations_version": "1.24.1",
            "generated_by": "recon contracts generate (dagster_project/contracts/suites.py)",
            "system": contract.system,
            "stream": contract.stream,
            "role": contract.role,
            "table": contract.table,
            "primary_key": contract.primary_key,
            "cursor_field": contract.cursor_field,
            "order_id_sql": contract.order_id_sql,
            "accepted_types": contract.accepted_types,
        },
        "notes": f"Contract of {contract.table}. Generated from the project config and overrides.yml; "
                 "regenerate instead of editing by hand.",
    }


def contracts_for(config: ReconConfig, expectations_dir: Path | None = None,
                  system: str | None = None) -> list[StreamContract]:
    """Every configured stream's contract (optionally of one system), in a stable order.

    Args:
        config: the project config.
        expectations_dir: the folder whose ``overrides.yml`` applies (default: the config's).
        system: only this system's streams.

    Returns:
        The contracts, by system then stream.
    """
    overrides = load_overrides((expectations_dir or expectations_dir_for(config)) / OVERRIDES_FILE)
    if system is not None and system not in config.systems:
        raise KeyError(f"unknown system '{system}'; configured: {sorted(config.systems)}")
    return [
        build_contract(config, name, stream, overrides)
        for name in sorted(config.systems) if system in (None, name)
        for stream in sorted(config.systems[name].streams)
    ]


def _write(contract: StreamContract, expectations_dir: Path) -> tuple[Path, str | None]:
    path = suite_path(expectations_dir, contract.suite_name)
    text = json.dumps(suite_json(contract), indent=2, sort_keys=True) + "\n"
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return path, None
    action = "regenerated" if path.is_file() else "generated"
    path.write_text(text, encoding="utf-8")
    return path, action


def generate_suites(config: ReconConfig, expectations_dir: Path | None = None,
                    system: str | None = None) -> list[Path]:
    """Write (or refresh) the suite JSON of every configured stream.

    Args:
        config: the project config.
        expectations_dir: the GX File Data Context folder (default: the config's, see
            :func:`expectations_dir_for`).
        system: only this system's streams.

    Returns:
        The files written.

    Raises:
        ProtectedSuitesError: the folder is the repository's demo suites and the config is not the demo's.
    """
    expectations_dir = expectations_dir or expectations_dir_for(config)
    _check_writable(config, expectations_dir)
    contracts = contracts_for(config, expectations_dir, system)
    init_context(expectations_dir)
    suites_dir(expectations_dir).mkdir(parents=True, exist_ok=True)
    return [_write(contract, expectations_dir)[0] for contract in contracts]


def ensure_suites(config: ReconConfig, expectations_dir: Path | None = None, system: str | None = None,
                  stream: str | None = None) -> list[SuiteWrite]:
    """Write the config's suites that are missing or differ from what the config generates now.

    Runs before every validation, so a new config's first run has its contracts without a manual step.
    The repository's committed demo suites are left alone (a missing one stays a failure, a stale one
    is flagged): they change only through ``recon contracts generate`` and review.

    Args:
        config: the project config.
        expectations_dir: the GX File Data Context folder (default: the config's).
        system: only this system's streams.
        stream: only this stream (with ``system``).

    Returns:
        One :class:`SuiteWrite` per suite written (none when all were current).

    Raises:
        ProtectedSuitesError: a config other than the demo's points at the committed demo suites.
    """
    expectations_dir = expectations_dir or expectations_dir_for(config)
    _check_writable(config, expectations_dir)  # another config must not even read the demo's suites
    if is_committed(expectations_dir):
        return []
    contracts = [c for c in contracts_for(config, expectations_dir, system) if stream in (None, c.stream)]
    init_context(expectations_dir)
    suites_dir(expectations_dir).mkdir(parents=True, exist_ok=True)
    writes = []
    for contract in contracts:
        path, action = _write(contract, expectations_dir)
        if action is not None:
            writes.append(SuiteWrite(contract.system, contract.stream, path, action))
    return writes


def load_suite_json(expectations_dir: Path, name: str) -> dict[str, Any]:
    """The committed suite; raises :class:`SuiteNotFoundError` when it is missing or unreadable."""
    path = suite_path(expectations_dir, name)
    if not path.is_file():
        raise SuiteNotFoundError(
            f"suite {name} not found at {path}; run `recon contracts generate` (and commit it)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SuiteNotFoundError(f"suite {name} at {path} is not valid JSON: {exc}") from None
    if not data.get("expectations"):
        raise SuiteNotFoundError(f"suite {name} at {path} has no expectations")
    return data


def is_stale(contract: StreamContract, committed: dict[str, Any]) -> bool:
    """True when the committed suite differs from what the config and overrides generate now."""
    return json.dumps(suite_json(contract), sort_keys=True) != json.dumps(committed, sort_keys=True)
