"""WebSocket connections: websockets' sans-I/O protocol over the transport, and the ASGI session above it."""
