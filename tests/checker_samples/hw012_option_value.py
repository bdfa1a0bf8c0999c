"""HW012: option values hatchway's Config refuses, checked by Config's own checks."""

import sys

import hatchway
import uvicorn
from hatchway import Config

COMMON = {"host": "0.0.0.0", "workers": 0}  # error: HW012


async def app(scope, receive, send):
    pass


def main():
    hatchway.run("hw012_option_value:app", workers=0)  # error: HW012
    hatchway.run("hw012_option_value:app", workers=-2)  # error: HW012
    hatchway.run("hw012_option_value:app", port=70000, lifespan="yes")  # error: HW012, HW012
    Config(app, http="h2")  # error: HW012
    Config(app, http2=True, h2_max_frame_size=1024)  # error: HW012
    options = {
        "port": -1,  # error: HW012
        "timeout_keep_alive": -5,  # error: HW012
        "log_level": "info",
    }
    hatchway.run("hw012_option_value:app", **options)
    hatchway.run("hw012_option_value:app", **{"backlog": 0})  # error: HW012
    hatchway.run("hw012_option_value:app", **COMMON)


def compliant(settings):
    # Values Config accepts, values the code does not show, and uvicorn code (uvicorn does not check them:
    # workers=0 quietly runs one process).
    hatchway.run("hw012_option_value:app", workers=4, port=0, lifespan="on", log_level="DEBUG")
    hatchway.run("hw012_option_value:app", http="zttp", http2=True, h2_max_concurrent_streams=250)
    hatchway.run("hw012_option_value:app", workers=settings.workers, port=int(sys.argv[1]))
    hatchway.run("hw012_option_value:app", ssl_keyfile="key.pem", ssl_certfile=settings.cert)
    hatchway.run("hw012_option_value:app", ssl_keyfile="key.pem", **settings.tls)
    uvicorn.run("hw012_option_value:app", workers=0)
    changed = {"workers": 0}
    changed["workers"] = 4
    hatchway.run("hw012_option_value:app", **changed)
    hatchway.run("hw012_option_value:app", reload=True, workers=4)  # HW002's business  # noqa: HW002
