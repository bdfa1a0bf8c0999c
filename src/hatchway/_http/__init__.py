"""HTTP/1.1: a sans-I/O parser seam (two codecs), the request/response cycle, and the asyncio protocol."""
