"""The read model's tables as values, shared by their writer (the projector, `projections`)
and their reader (the API): an order's state as its `orders` row, an event as its
`order_events` row, and the audit log's JSON back into events. Pure: no I/O."""
