"""Host side: the stdio JSON-RPC transport, dispatch and the host commands."""
