"""Lua scripts run by Redis for the rate limiter and the lane state store.

A package (not just a folder) so the ``.lua`` files ship with a wheel; load them through
:mod:`broker.scripts`.
"""
