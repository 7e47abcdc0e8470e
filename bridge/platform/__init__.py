"""What differs between Linux, macOS and Windows: OS file locks and watching a process die.

Each switch is chosen at run time from ``sys.platform`` and the probes the
running Python offers, so the choice itself is unit-tested on any platform.
"""
