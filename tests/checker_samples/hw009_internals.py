"""HW009: server.servers[0].sockets[0]."""

import uvicorn


def port_of(server: uvicorn.Server) -> int:
    return server.servers[0].sockets[0].getsockname()[1]  # error: HW009


class Harness:
    server: uvicorn.Server

    def address(self):
        sock = self.server.servers[-1].sockets[0]  # error: HW009
        return sock.getsockname()

    # Compliant: unrelated attributes with similar names.
    def other(self, pool):
        self.servers = []
        return pool.servers[0].name, pool.sockets
