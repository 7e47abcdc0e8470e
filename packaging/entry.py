"""The frozen executable's entry point: the same command line as ``python -m bridge``."""

from bridge.cli import main

raise SystemExit(main())
