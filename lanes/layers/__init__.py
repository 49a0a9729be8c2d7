"""Features that wrap a job's path instead of branching inside it: the ledger, the budgets
and the response cache.

Each is a layer with hooks around the dispatch (:class:`~lanes.layers.hooks.DispatchLayer`)
and around each provider call (:class:`~lanes.layers.hooks.CallLayer`), in the manner of
dramatiq's middleware. :mod:`lanes.layers.build` makes the list of layers once from the config
(a feature switched off is not in it); the dispatcher and the worker's runner call the list
at each point and name no feature.
"""
