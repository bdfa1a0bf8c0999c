"""HW010: unknown keyword arguments to run()/Config()."""

import hatchway
import uvicorn
from uvicorn import Config

extra = {"port": 8000}

if __name__ == "__main__":
    uvicorn.run("hw010_unknown_option:app", relaod=True)  # error: HW010
    hatchway.run("hw010_unknown_option:app", prot=8000)  # error: HW010
    hatchway.run("hw010_unknown_option:app", debug=True)  # error: HW010
    uvicorn.run("hw010_unknown_option:app", timeout_send=5)  # error: HW010
    Config(
        "hw010_unknown_option:app",
        log_levle="debug",  # error: HW010
    )
    hatchway.run("hw010_unknown_option:app", **{"wokers": 2})  # error: HW010

    # Compliant: known options, uvicorn's old debug in uvicorn code, hatchway-only options in hatchway code.
    uvicorn.run("hw010_unknown_option:app", host="0.0.0.0", port=8000, **extra)
    uvicorn.run("hw010_unknown_option:app", debug=True)
    hatchway.run("hw010_unknown_option:app", timeout_send=5, app_dir=".")


async def app(scope, receive, send):
    pass
