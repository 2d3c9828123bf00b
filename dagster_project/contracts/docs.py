"""GX validation results of a contract run, and GX Data Docs built from them.

The nightly does not import Great Expectations (seconds of import for a check that takes
milliseconds). Each recorded validation writes its result as GX 1.x validation-result JSON
(:func:`validation_result`, :func:`write_result`; ``ExpectationSuiteValidationResult`` fields),
and Data Docs are built from those files by GX's own site builder, on demand
(:func:`build_data_docs`: ``recon contracts docs``, ``recon contracts check --docs DIR``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dagster_project.contracts.results import jsonable

if TYPE_CHECKING:
    from dagster_project.config.model import ReconConfig

GX_VERSION = "1.24.1"
DATASOURCE = "recon_duckdb"


def results_root(config: ReconConfig) -> Path:
    """Where the Dagster checks write each run's results: ``<state_dir>/contracts/validations/<run id>/``."""
    return config.state_dir / "contracts" / "validations"


def docs_root(config: ReconConfig) -> Path:
    """Where ``recon contracts docs`` builds a run's Data Docs: ``<state_dir>/contracts/data_docs/<run id>/``."""
    return config.state_dir / "contracts" / "data_docs"


def latest_run(config: ReconConfig) -> Path | None:
    """The newest run folder under :func:`results_root` (None before any check ran)."""
    root = results_root(config)
    runs = [p for p in root.iterdir() if p.is_dir() and any(p.glob("*.json"))] if root.is_dir() else []
    return max(runs, key=lambda p: p.stat().st_mtime_ns) if runs else None


def validation_result(suite: dict[str, Any], results: list[dict[str, Any]], *, table: str, run_name: str,
                      run_time: dt.datetime, as_of_date: dt.date | None, parameters: dict[str, Any]) -> dict[str, Any]:
    """One suite's results as GX's ``ExpectationSuiteValidationResult`` JSON.

    Args:
        suite: the suite JSON that ran.
        results: GX-shaped results, one per expectation in suite order (``compiler.evaluate``).
        table: the validated table.
        run_name: names the run in Data Docs (the Dagster run id, or "recon contracts check").
        run_time: when it ran.
        as_of_date: the as-of day the batch was cut at.
        parameters: the expectation parameters of the run.

    Returns:
        A JSON-able dict.
    """
    items = []
    for expectation, result in zip(suite.get("expectations") or [], results, strict=True):
        config = {k: expectation[k] for k in ("type", "kwargs", "meta", "id", "description", "notes", "severity")
                  if k in expectation}
        items.append({"success": bool(result["success"]), "expectation_config": jsonable(config),
                      "result": jsonable(result.get("result") or {}),
                      "exception_info": jsonable(result.get("exception_info") or {})})
    passed = sum(i["success"] for i in items)
    batch_id = f"{DATASOURCE}-{table}" + (f"-as-of-{as_of_date}" if as_of_date else "")
    return {
        "success": passed == len(items),
        "results": items,
        "suite_name": suite["name"],
        "suite_parameters": jsonable(parameters),
        "statistics": {"evaluated_expectations": len(items), "successful_expectations": passed,
                       "unsuccessful_expectations": len(items) - passed,
                       "success_percent": passed / len(items) * 100 if items else None},
        "meta": {"great_expectations_version": GX_VERSION,
                 "run_id": {"run_name": run_name, "run_time": run_time.isoformat()},
                 "validation_time": run_time.strftime("%Y%m%dT%H%M%S.%fZ"),
                 "active_batch_definition": {"datasource_name": DATASOURCE, "data_connector_name": "fluent",
                                             "data_asset_name": table,
                                             "batch_identifiers": {"as_of_date": str(as_of_date) if as_of_date
                                                                   else None}},
                 "validated_by": "recon (dagster_project/contracts/compiler.py: one SQL query per stream)"},
        "batch_id": batch_id,
    }


def write_result(folder: Path, result: dict[str, Any]) -> Path:
    """Write ``<folder>/<suite>.json`` (atomically); returns the path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{result['suite_name']}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def build_data_docs(results: list[dict[str, Any]], suites: list[dict[str, Any]], out_dir: Path) -> Path:
    """Render GX Data Docs (suites and validation results) into ``out_dir`` with GX's site builder.

    Args:
        results: validation results as written by :func:`validation_result`.
        suites: the suite JSON of each result's suite.
        out_dir: the site folder.

    Returns:
        The site's ``index.html``.
    """
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.core import ExpectationSuite
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResult,
        ExpectationValidationResult,
    )
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    for suite in suites:
        context.suites.add(ExpectationSuite(**{k: v for k, v in suite.items() if k != "id"}))
    keys: list[Any] = []
    for data in results:
        run = data["meta"]["run_id"]
        run_id = RunIdentifier(run_name=run["run_name"], run_time=dt.datetime.fromisoformat(run["run_time"]))
        items = [ExpectationValidationResult(
            success=item["success"], result=item["result"], exception_info=item["exception_info"],
            expectation_config=ExpectationConfiguration(**{k: v for k, v in item["expectation_config"].items()
                                                           if k != "severity"}))
            for item in data["results"]]
        meta = {**data["meta"], "run_id": run_id}
        result = ExpectationSuiteValidationResult(
            success=data["success"], results=items, suite_name=data["suite_name"],
            suite_parameters=data.get("suite_parameters"), statistics=data["statistics"], meta=meta,
            batch_id=data["batch_id"])
        key = ValidationResultIdentifier(expectation_suite_identifier=ExpectationSuiteIdentifier(data["suite_name"]),
                                         run_id=run_id, batch_identifier=data["batch_id"])
        context.validation_results_store.set(key, result)
        keys += [key, ExpectationSuiteIdentifier(name=data["suite_name"])]
    out_dir.mkdir(parents=True, exist_ok=True)
    context.add_data_docs_site("recon_contracts", {
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(out_dir)},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    })
    context.build_data_docs(site_names=["recon_contracts"], resource_identifiers=keys)
    return out_dir / "index.html"
