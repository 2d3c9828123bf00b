"""The exception store and what reads it: the store (`store`: DDL, sync, transitions; `read`: queries),
routing and owners (`routing`), the diffs each night opens (`diffs`, `contract_diffs`) and an order's
timeline (`timeline`)."""
