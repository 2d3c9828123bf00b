"""Contract checks: Great Expectations suites that guard every landed source stream.

- ``rules``: the contract of a stream, derived from the config (+ ``expectations/overrides.yml``);
- ``suites``: where a config's GX suites live, and generating and loading them;
- ``compiler``: a suite's expectations compiled into pushed-down SQL (GX's semantics);
- ``evaluation``: the compiled suite run as one aggregate query per stream, the failing rows kept once;
- ``results``: what a validation found (outcomes, drift, samples, verdict, messages);
- ``runner``: validate a stream (drift, the as-of batch, the query, quarantine, violations);
- ``docs``: GX validation-result JSON of a run, and GX Data Docs built from it;
- ``store``: the ``recon_meta.contract_*`` tables;
- ``cli``: ``recon contracts generate|check|docs``.
"""
