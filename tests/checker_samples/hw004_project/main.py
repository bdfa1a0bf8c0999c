"""HW004: import strings that do not resolve in this small project."""

import uvicorn
from hatchway import Config


async def api(scope, receive, send):
    pass


if __name__ == "__main__":
    uvicorn.run("main:app")  # error: HW004
    uvicorn.run("mian:api")  # error: HW004
    uvicorn.run("main")  # error: HW004
    uvicorn.run("my-app:api")  # error: HW004
    uvicorn.run("service.web:aplication")  # error: HW004
    uvicorn.run("service.missing:app")  # error: HW004
    uvicorn.run("main.api:app")  # error: HW004
    Config("server:ap", app_dir="src")  # error: HW004
    uvicorn.run("fastapi_project_not_here.main:app")  # error: HW004
    uvicorn.run("no_such_module:app", reload=True)  # error: HW004

    # Compliant: names that exist, installed packages, modules somewhere else in the project (the server may
    # be started from scripts/), and modules whose names cannot be known.
    uvicorn.run("main:api")
    uvicorn.run("service.web:application")
    uvicorn.run("service.web:application.router")
    uvicorn.run("service:make")
    Config("server:app", app_dir="src")
    uvicorn.run("json:loads")
    uvicorn.run("hatchway.demo:app")
    uvicorn.run("serve:app")
    uvicorn.run("star:anything")
