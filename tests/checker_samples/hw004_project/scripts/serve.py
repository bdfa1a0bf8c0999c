"""Started from the project's top directory: names resolve from there too."""

import uvicorn

if __name__ == "__main__":
    uvicorn.run("service.web:application")
    uvicorn.run("service.web:aplication")  # error: HW004
    uvicorn.run("main:api")
