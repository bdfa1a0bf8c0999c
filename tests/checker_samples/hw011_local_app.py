"""HW011: hatchway's run() with reload or workers given an app that only exists inside a function."""

import functools
import sys

import hatchway
from hatchway import run as serve
from starlette.applications import Starlette
from uvicorn.importer import import_from_string


async def app(scope, receive, send):
    pass


def create_app():
    return Starlette()


def get_application():
    return app


class App:
    async def __call__(self, scope, receive, send):
        pass


def build_and_reload():
    web = Starlette()
    hatchway.run(web, reload=True)  # error: HW011


def factory_with_workers():
    web = create_app()
    serve(web, workers=4)  # error: HW011


def local_def():
    async def web(scope, receive, send):
        pass

    hatchway.run(web, reload=True)  # error: HW011


def local_instance_and_lambda(flag):
    web = App()
    hatchway.run(web, workers=2)  # error: HW011
    handler = lambda scope, receive, send: app(scope, receive, send)  # noqa: E731
    hatchway.run(handler, reload=flag)  # error: HW011


def wrapped():
    partial = functools.partial(app)
    hatchway.run(partial, reload="--reload" in sys.argv)  # error: HW011


def outer():
    web = Starlette()

    def inner():
        hatchway.run(web, reload=True)  # error: HW011

    return inner


def annotated():
    web: Starlette = Starlette()
    hatchway.run(web, workers=2)  # error: HW011


# Compliant: module-level apps (hatchway finds their import string), parameters, aliases of module-level
# names, factories that hand out a module-level app, apps fetched by name, globals, and no reload/workers.
def compliant(param):
    hatchway.run(app, reload=True)
    hatchway.run(param, reload=True)
    alias = app
    hatchway.run(alias, workers=4)
    same = get_application()
    hatchway.run(same, reload=True)
    fetched = import_from_string("hw011_local_app:app")
    hatchway.run(fetched, reload=True)
    web = Starlette()
    hatchway.run(web)
    hatchway.run(web, workers=1)
    hatchway.run("hw011_local_app:app", reload=True)


def assigns_global():
    global app
    app = Starlette()
    hatchway.run(app, reload=True)
