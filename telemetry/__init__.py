"""Observability shared by every process: the work context, trace ids, logs, metrics HTTP."""
