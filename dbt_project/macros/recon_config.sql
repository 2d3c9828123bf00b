{#
  The platform config as passed in `--vars` (key `recon`): systems, roles, rules, owners, and the
  catalogue (ingestion/catalogue.py: each role's staged columns).
  Returns a dict with every top-level key present, so callers can `.get()` safely.
#}
{% macro recon_config() -%}
    {%- set cfg = var('recon', {}) or {} -%}
    {%- do return({
        'systems': cfg.get('systems') or {},
        'roles': cfg.get('roles') or {},
        'rules': cfg.get('rules') or {},
        'owners': cfg.get('owners') or {},
        'catalogue': cfg.get('catalogue') or {},
    }) -%}
{%- endmacro %}
