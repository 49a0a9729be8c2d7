"""Lua scripts run by Redis for the rate limiter, the lane state and the job stores.

A package (not just a folder) so the ``.lua`` files ship with a wheel; load them through
:mod:`lanes.stores.scripts`.
"""
