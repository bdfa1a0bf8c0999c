"""noqa: suppressed findings are not reported."""

import uvicorn

app = object()

uvicorn.run(app, reload=True)  # noqa
uvicorn.run(app, workers=2)  # noqa: HW001, HW003
uvicorn.run(app, workers=3)  # noqa: HW001  # error: HW003
uvicorn.run("noqa_sample:app", relaod=True)  # NOQA:HW010
