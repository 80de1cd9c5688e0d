"""Model backends that turn chat messages and tool schemas into the next assistant turn."""
