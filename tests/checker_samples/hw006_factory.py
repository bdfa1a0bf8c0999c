"""HW006: an app factory passed without factory=True."""

import hatchway
import uvicorn


def create_app():
    return object()


def build(settings=None):
    app = object()
    return app


async def app(scope, receive, send):
    pass


def asgi2(scope):
    return app


if __name__ == "__main__":
    uvicorn.run(create_app)  # error: HW006
    hatchway.run("hw006_factory:create_app")  # error: HW006
    hatchway.run("hw006_factory:build", factory=False)  # error: HW006

    # Compliant: factory=True, a plain ASGI app, an ASGI2 app, or the factory already called.
    uvicorn.run(create_app, factory=True)
    hatchway.run("hw006_factory:build", factory=True)
    hatchway.run("hw006_factory:app")
    uvicorn.run(asgi2, interface="asgi2")
    uvicorn.run(create_app())
