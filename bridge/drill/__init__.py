"""The runbook drill and the local model fake it (and the tests) drive codex with."""
