"""Developer tools: latency benchmark, load test, and the helper that starts the app as a server."""
