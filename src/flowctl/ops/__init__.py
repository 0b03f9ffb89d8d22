"""Typed operations on workflows: they return records and raise `FlowctlError`s; never print.

One module per concern, each imported on its own (this package imports nothing):
`rpc` (the server's failures as flowctl errors, riding out outages), `statuses` (Temporal's
execution statuses as flowctl names them), `runs` (start, wait, describe, cancel, terminate),
`messages` (signal, query, update, their payloads), `visibility` (list, count, approvals,
batch matches), `bulk` (many at once, a bounded number at a time), `resets` (retry and reset
without doing a step twice), `taskqueues` (who polls a task queue, what waits in it),
`schedules` (a kind's schedules checked, created and acted on) and `schedule_views` (described
and listed). History reads live in `flowctl.history`.
"""
