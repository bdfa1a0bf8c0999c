-- wrk: POST a 64 KiB body; the echo app sends it back.
wrk.method = "POST"
wrk.body = string.rep("a", 65536)
wrk.headers["Content-Type"] = "application/octet-stream"
