"""dbt for one config: its generated project folder (`dbt_codegen`), the prepared project and resource
(`dbt_project`), and dbt run inside the Dagster process (`dbt_in_process`)."""
