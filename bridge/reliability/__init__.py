"""Capture reliability: the capture mode, its recorded transitions and the release gate."""
