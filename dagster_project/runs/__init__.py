"""Running the nightly job through Dagster (`runner`) and its dry run (`dry_run`)."""
