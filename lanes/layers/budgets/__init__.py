"""Budgets: per request, daily and monthly spend limits, held at submit and settled per call.

:mod:`~lanes.layers.budgets.gate` is the dispatcher's side, :mod:`~lanes.layers.budgets.worker`
the worker's, :mod:`~lanes.layers.budgets.layer` puts both on the path as layers, and
:mod:`~lanes.layers.budgets.webhook` posts alerts.
"""
