"""Client classes for user programs: the connection, RealtimeDataClient, WebSocketDataReader."""
