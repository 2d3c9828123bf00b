"""What the Dagster definitions and the runs stand on: the DuckDB resource (`duckdb_resource`), the
one-writer run lock it and dbt hold (`run_lock`), the daily partitions (`partitions`)."""
