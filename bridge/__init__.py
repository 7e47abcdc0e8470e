"""capture-bridge: the capture sidecar that records what AI coding agents do."""

__version__ = "0.1.0"
PROTOCOL_VERSION = 1
