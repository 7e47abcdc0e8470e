"""The real peers (codex, Claude Code): where they are installed and the fence they run in."""
