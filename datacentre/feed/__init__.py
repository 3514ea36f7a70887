"""The WebSocket feed: the pure protocol, the live broadcaster and the replay server."""
