"""The catalogue (ingestion/catalogue.py) is the one place roles, canonical fields and diff types are
declared: the docs, the config, dbt and the demo generator agree with it because they read it."""

import re
from pathlib import Path

import pytest
import yaml

from dagster_project.config.model import DEMO_CONFIG_PATH, ConfigError, load_config
from ingestion import catalogue

RULES_DOC = Path(__file__).resolve().parents[1] / "docs" / "reconciliation-rules.md"


def test_the_docs_diff_type_table_is_the_catalogue() -> None:
    assert catalogue.markdown_table() in RULES_DOC.read_text(), (
        "docs/reconciliation-rules.md#diff-types differs from ingestion/catalogue.py; it should read:\n"
        + catalogue.markdown_table())


def test_the_docs_staged_columns_are_the_catalogues_in_order() -> None:
    section = RULES_DOC.read_text().split("## Canonical staged columns, per role", 1)[1].split("\n## ", 1)[0]
    documented = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 2 and cells[0] in catalogue.ROLES:
            documented[cells[0]] = [re.sub(r"\s*\(.*", "", c).strip() for c in re.split(r",\s*(?![^()]*\))", cells[1])]
    assert documented == {role: [name for name, _ in cols] for role, cols in catalogue.ROLE_COLUMNS.items()}


def test_a_config_without_rules_gets_the_catalogues_graces_and_dbt_gets_the_catalogue(recon_home, tmp_path) -> None:
    raw = yaml.safe_load(DEMO_CONFIG_PATH.read_text())
    raw.pop("rules", None)
    path = tmp_path / "no-rules.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    config = load_config(path)
    assert config.rules.grace_hours == catalogue.DEFAULT_GRACE_HOURS
    assert config.dbt_vars()["recon"]["catalogue"]["role_columns"]["payments"][6] == ["amount", "decimal(20,4)"]

    raw["rules"] = {"grace_hours": {"missing_refund": 12}}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(ConfigError, match=r"unknown diff type\(s\) \['missing_refund'\]; expected some of "
                                          r"\['missing_payment'"):
        load_config(path)


def test_every_diff_type_has_a_human_name_and_unknown_ones_still_read() -> None:
    assert len({d.title for d in catalogue.DIFF_CATALOGUE}) == len(catalogue.DIFF_CATALOGUE)
    assert catalogue.diff_title("orphan_record") == "Record without an order"
    assert catalogue.diff_title("some_new_type") == "Some new type"
