-- Every staged fulfillments row of every system playing the fulfillments role (all versions), in one relation.
{{ union_role('fulfillments') }}
