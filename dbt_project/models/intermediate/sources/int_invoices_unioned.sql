-- Every staged invoices row of every system playing the invoices role (all versions), in one relation.
{{ union_role('invoices') }}
