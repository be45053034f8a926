"""Scripting: Lua exactly as Orthanc runs it, and Python hooks beside it.

A service-level package: doors (REST, DIMSE) and services call the one-line entry points
of :mod:`app.scripting.events`; :mod:`app.scripting.engine` owns the Lua states, the
Python hooks and the event thread of the process.
"""
