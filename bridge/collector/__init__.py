"""Collector migration: moving the legacy OTel collector roots to the canonical one.

A pure planner (``plan``, ``status``) decides; ``scan`` reads the filesystem into
snapshots; ``execute`` does backups, staging and the atomic swap under a lock
(``lock``) with a journal in the state file (``state``); ``service`` is the API
the host commands and the CLI call. Nothing here imports ``bridge.host``.
"""
