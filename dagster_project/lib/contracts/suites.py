"""The committed GX suites: generated from the config + ``expectations/overrides.yml``, loaded to run.

``expectations/`` is a GX 1.x File Data Context (``great_expectations.yml``); its expectation store
holds one suite per stream, ``expectations/expectations/<system>__<stream>__contract.json``. The
suites are *generated* (``recon contracts generate``) and committed: the JSON is written
deterministically (expectation ids are derived from the suite and rule id), so a config change shows
up as a reviewable diff. To change a rule, edit ``overrides.yml`` and regenerate; a hand edit of the
JSON is overwritten by the next ``generate``.

Each expectation's ``meta`` carries what the runner needs: ``rule_id``, ``check``, ``column``,
``blocking`` and, for row-level rules, ``violation_sql`` (see ``rules.py``). GX's own ``severity``
is ``critical`` for blocking rules and ``warning`` for the others.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from dagster_project.lib.config import ReconConfig
from dagster_project.lib.contracts.rules import Rule, StreamContract, build_contract, load_overrides

EXPECTATIONS_DIR = Path(__file__).resolve().parents[3] / "expectations"
OVERRIDES_FILE = "overrides.yml"
_NAMESPACE = uuid.UUID("3f1d7f5e-2a43-4c44-9a0c-7d2b6c1e5a10")


class SuiteNotFoundError(LookupError):
    """A stream's committed suite is missing: the contract cannot run, which is a failure."""


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


def suite_json(contract: StreamContract) -> dict[str, Any]:
    """The suite of one stream as GX's expectation store writes it (deterministic)."""
    name = contract.suite_name
    return {
        "name": name,
        "id": str(uuid.uuid5(_NAMESPACE, name)),
        "expectations": [_expectation_json(name, rule) for rule in contract.rules],
        "meta": {
            "great_expectations_version": "1.24.1",
            "generated_by": "recon contracts generate (dagster_project/lib/contracts/suites.py)",
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


def contracts_for(config: ReconConfig, expectations_dir: Path = EXPECTATIONS_DIR,
                  system: str | None = None) -> list[StreamContract]:
    """Every configured stream's contract (optionally of one system), in a stable order."""
    overrides = load_overrides(expectations_dir / OVERRIDES_FILE)
    if system is not None and system not in config.systems:
        raise KeyError(f"unknown system '{system}'; configured: {sorted(config.systems)}")
    return [
        build_contract(config, name, stream, overrides)
        for name in sorted(config.systems) if system in (None, name)
        for stream in sorted(config.systems[name].streams)
    ]


def generate_suites(config: ReconConfig, expectations_dir: Path = EXPECTATIONS_DIR,
                    system: str | None = None) -> list[Path]:
    """Write (or refresh) the suite JSON of every configured stream.

    Args:
        config: the project config.
        expectations_dir: the GX File Data Context folder.
        system: only this system's streams.

    Returns:
        The files written.
    """
    folder = suites_dir(expectations_dir)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for contract in contracts_for(config, expectations_dir, system):
        path = suite_path(expectations_dir, contract.suite_name)
        text = json.dumps(suite_json(contract), indent=2, sort_keys=True) + "\n"
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def load_suite_json(expectations_dir: Path, name: str) -> dict[str, Any]:
    """The committed suite; raises :class:`SuiteNotFoundError` when it is missing or unreadable."""
    path = suite_path(expectations_dir, name)
    if not path.is_file():
        raise SuiteNotFoundError(
            f"suite {name} not found at {path}; run `recon contracts generate` and commit it")
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
