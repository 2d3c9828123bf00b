"""Contract checks: Great Expectations suites that guard every landed source stream.

- ``rules``: the contract of a stream, derived from the config (+ ``expectations/overrides.yml``);
- ``suites``: where a config's GX suites live, and generating and loading them;
- ``gx_duckdb``: the small shim that makes GX 1.24's SQL engine work on DuckDB;
- ``runner``: validate a stream (drift, GX run, quarantine, violations, Data Docs);
- ``store``: the ``recon_meta.contract_*`` tables;
- ``cli``: ``recon contracts generate|check``.
"""
