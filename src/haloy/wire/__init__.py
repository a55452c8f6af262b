"""What crosses a process boundary: the API's bodies, the route snapshot, the control socket.

The CLI, haloyd and haloy-proxy all import these contracts; this package imports nothing of
haloy but `haloy.errors`, so taking a contract never pulls in a server, Docker or the store.
"""
