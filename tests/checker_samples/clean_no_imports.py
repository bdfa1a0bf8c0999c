"""No findings: the same shapes with neither uvicorn nor hatchway imported."""


def run(app, reload=False, workers=1):
    pass


app = object()
run(app, reload=True, workers=4)


def wait(server):
    while not server.started:
        pass
    return server.servers[0].sockets[0]
