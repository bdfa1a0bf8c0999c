"""HW001: uvicorn needs an import string, not the app object, for reload, workers or debug."""

import uvicorn
import uvicorn as u
from uvicorn import Config, Server
from uvicorn import run as serve


async def app(scope, receive, send):
    pass


api = app


def main_with_local_app():
    local_app = object()
    uvicorn.run(local_app, reload=True)  # error: HW001


def main_with_local_def():
    async def local_app(scope, receive, send):
        pass

    uvicorn.run(local_app, workers=2)  # error: HW001


if __name__ == "__main__":
    uvicorn.run(app, reload=True)  # error: HW001
    u.run(app, workers=4)  # error: HW001
    serve(api, debug=True)  # error: HW001
    uvicorn.run(
        app,  # error: HW001
        reload=True,
    )
    server = Server(Config(app, reload=True))  # error: HW001
    config = Config(app=app, workers=2)  # error: HW001
    Server(config).run()

    # Compliant: an import string, no supervisor, or a Config that never reaches a Server.
    uvicorn.run("hw001_app_object:app", reload=True)
    u.run("hw001_app_object:api", workers=4)
    uvicorn.run(app)
    uvicorn.run(app, workers=1)
    uvicorn.run(app, reload=False)
    standalone = Config(app, reload=True)


APP_PATH = "hw001_app_object:app"
FROM_ENV = __import__("os").environ.get("APP", APP_PATH)


def wrapper(target, reload=False):
    # Compliant: the parameter may well be an import string.
    uvicorn.run(target, reload=reload)


def from_settings(settings):
    uvicorn.run(APP_PATH, reload=True)
    uvicorn.run(settings.app_path, workers=4)
    uvicorn.run(FROM_ENV, reload=True)
    path = "hw001_app_object:app"
    uvicorn.run(path, reload=True)
    built = make_app()
    uvicorn.run(built, reload=True)  # error: HW001
    uvicorn.run(make_app(), workers=2)  # error: HW001
    uvicorn.run(lambda scope: app, reload=True)  # error: HW001


def make_app():
    return app
