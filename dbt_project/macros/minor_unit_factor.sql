{#
  The factor that turns an amount in minor units into major units for a currency expression:
  1 for zero-decimal currencies, 0.001 for three-decimal ones, else 0.01 (ISO 4217). DECIMAL, never float.
#}
{% macro minor_unit_factor(currency) -%}
case
        when upper({{ currency }}) in ('BIF', 'CLP', 'DJF', 'GNF', 'ISK', 'JPY', 'KMF', 'KRW', 'PYG', 'RWF', 'UGX', 'UYI', 'VND', 'VUV', 'XAF', 'XOF', 'XPF')
            then cast(1 as decimal(10,4))
        when upper({{ currency }}) in ('BHD', 'IQD', 'JOD', 'KWD', 'LYD', 'OMR', 'TND')
            then cast(0.001 as decimal(10,4))
        else cast(0.01 as decimal(10,4))
    end
{%- endmacro %}
