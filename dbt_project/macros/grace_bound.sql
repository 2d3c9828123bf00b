{#
  Grace windows (rules.grace_hours, per diff type; 0 when not configured). A diff whose rule has a
  grace window fires as of D only once its anchor is strictly below cutoff(D) - grace.

  grace_anchors() lists every (diff type, model, anchor column) a rule of int_order_diffs_candidates
  waits on; the rules test their window with grace_passed(), which refuses an unlisted pair. The list
  is what lets the incremental order models find the orders whose grace window ends between two
  as-of days (grace_crossed_orders) without reading every order.
#}
{% macro grace_anchors() -%}
    {%- do return([
        ('missing_payment', 'int_orders_aggregated', 'ordered_at'),
        ('missing_invoice', 'int_orders_aggregated', 'first_captured_at'),
        ('missing_fulfillment', 'int_orders_aggregated', 'first_captured_at'),
        ('unpaid_fulfillment', 'int_orders_aggregated', 'first_fulfilled_at'),
        ('amount_mismatch', 'int_orders_aggregated', 'ordered_at'),
        ('currency_mismatch', 'int_orders_aggregated', 'ordered_at'),
        ('status_conflict', 'int_orders_aggregated', 'cancelled_at'),
        ('status_conflict', 'int_orders_aggregated', 'last_refunded_at'),
        ('missing_enrichment', 'int_orders_aggregated', 'ordered_at'),
        ('orphan_record', 'int_records_orphaned', 'first_updated_at'),
    ]) -%}
{%- endmacro %}

{#- The timestamp literal a diff's grace anchor must be strictly below to show as of `day` (D by default). -#}
{% macro grace_bound(diff_type, day=none) -%}
    {%- set grace = (recon_config().rules.get('grace_hours') or {}).get(diff_type) or 0 -%}
{{ as_of_cutoff(grace, day) }}
{%- endmacro %}

{#- The condition "the grace window of `diff_type` counted from `anchor` has passed as of D". -#}
{% macro grace_passed(diff_type, anchor, alias=none) -%}
    {%- set known = [] -%}
    {%- for listed_type, model_name, column in grace_anchors() if listed_type == diff_type and column == anchor -%}
        {%- do known.append(model_name) -%}
    {%- endfor -%}
    {%- if not known -%}
        {{ exceptions.raise_compiler_error("grace_passed: (" ~ diff_type ~ ", " ~ anchor ~ ") is not in grace_anchors(); list it there") }}
    {%- endif -%}
{{ (alias ~ '.') if alias else '' }}{{ anchor }} < {{ grace_bound(diff_type) }}
{%- endmacro %}

{#- A condition over the columns of `model_name` (int_orders_aggregated or int_records_orphaned): some
    grace window counted from one of its anchors ends between cutoff(day_a) and cutoff(day_b), so a rule
    may fire on one day and not on the other. `false` when the days are equal. -#}
{% macro grace_crossed(model_name, day_a, day_b) -%}
    {%- set days = [day_a | string, day_b | string] | sort -%}
    {%- set terms = [] -%}
    {%- if days[0] != days[1] -%}
        {%- for diff_type, listed_model, column in grace_anchors() if listed_model == model_name -%}
            {%- set term = '(' ~ column ~ ' >= ' ~ grace_bound(diff_type, days[0]) ~ ' and ' ~ column ~ ' < ' ~ grace_bound(diff_type, days[1]) ~ ')' -%}
            {%- if term not in terms -%}{%- do terms.append(term) -%}{%- endif -%}
        {%- endfor -%}
    {%- endif -%}
{{ (terms | join('\n        or ')) if terms else 'false' }}
{%- endmacro %}
