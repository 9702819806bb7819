"""Load test: start app.py on 127.0.0.1 and drive `/generate` with many gradio_client clients.

    python -m tools.loadtest                        # 16 clients, 400 requests, bundled weights
    python -m tools.loadtest --clients 4 --requests 24 --weights DIR --json
    python -m tools.loadtest --overload             # a 2-place queue against a crowd of 16

The normal run reports failed requests (must be 0), p50/p95 latency, throughput and the
server's resident memory (VmRSS) after the first quarter of the requests (request 100 of
400) and at the end, with the growth between them (target < 10 %). The overload run starts
the app with S2A_MAX_QUEUE small, fires more simultaneous requests than fit, and checks that
the extra ones get Gradio's "Queue is full! Please try again." at once (no crash, no hang),
then that one more normal request succeeds. Everything is bounded by --timeout; the server
is stopped at the end, on errors and on Ctrl-C. Exit status 0 when the run passed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from s2a.examples import example_hints, example_sketches
from tools.server import Server

BUSY_WORDS = ("queue is full", "try again", "busy")


# ---------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------


def example_inputs(folder: Path) -> list[tuple[str, str]]:
    """(sketch PNG, hints PNG) paths for every example sketch, saved under `folder`."""
    pairs = []
    for i, (name, sketch) in enumerate(example_sketches().items()):
        sketch_path, hints_path = folder / f"sketch-{i}.png", folder / f"hints-{i}.png"
        sketch.save(sketch_path)
        example_hints(name).save(hints_path)
        pairs.append((str(sketch_path), str(hints_path)))
    return pairs


def request_args(inputs: list[tuple[str, str]], index: int) -> tuple:
    """Request `index`: the examples in turn, with their hints on every other request."""
    from gradio_client import handle_file

    sketch, hints = inputs[index % len(inputs)]
    with_hints = index % 2 == 1
    return (handle_file(sketch), handle_file(hints) if with_hints else None,
            1.0 if index % 3 else 0.5, 10, index % 4)


def generate(client, args: tuple, timeout: float) -> None:
    """One `/generate` call; raises unless the face file came back."""
    result = client.submit(*args, api_name="/generate").result(timeout=max(timeout, 0.1))
    if not (isinstance(result, (list, tuple)) and result and Path(result[0]).is_file()):
        raise RuntimeError(f"no face in the result: {result!r:.200}")


def is_busy(error: BaseException) -> bool:
    return any(word in str(error).lower() for word in BUSY_WORDS)


def make_client(url: str):
    from gradio_client import Client

    return Client(url, verbose=False, download_files=tempfile.mkdtemp(prefix="s2a-load-"))


def close_client(client) -> None:
    try:
        client.close()
    except Exception:  # noqa: BLE001 - closing is best effort
        pass


# ---------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------


@dataclass
class LoadReport:
    clients: int
    requests: int
    completed: int = 0
    failed: int = 0
    timed_out: bool = False
    p50_s: float | None = None
    p95_s: float | None = None
    max_s: float | None = None
    throughput_rps: float | None = None
    wall_s: float | None = None
    rss_sample_at: int = 0
    rss_early_mib: float | None = None
    rss_end_mib: float | None = None
    rss_growth_pct: float | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.failed == 0 and not self.timed_out and self.completed == self.requests


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def run_load(server: Server, inputs, clients: int, requests: int, deadline: float) -> LoadReport:
    """`requests` /generate calls shared out over `clients` threads, each with its own Client."""
    report = LoadReport(clients=clients, requests=requests,
                        rss_sample_at=min(100, max(1, requests // 4)))
    lock = threading.Lock()
    next_index = 0
    latencies: list[float] = []

    def worker() -> None:
        nonlocal next_index
        try:
            client = make_client(server.url)
        except Exception as error:  # noqa: BLE001 - counted, not raised
            with lock:
                report.errors.append(f"client: {error!r:.300}")
            return
        try:
            while True:
                with lock:
                    if next_index >= requests or time.monotonic() > deadline:
                        return
                    index, next_index = next_index, next_index + 1
                started = time.perf_counter()
                try:
                    generate(client, request_args(inputs, index), deadline - time.monotonic())
                    error = None
                except Exception as exc:  # noqa: BLE001 - every failure is counted
                    error = exc
                elapsed = time.perf_counter() - started
                with lock:
                    report.completed += 1
                    if error is None:
                        latencies.append(elapsed)
                    else:
                        report.failed += 1
                        if len(report.errors) < 10:
                            report.errors.append(f"request {index}: {error!r:.300}")
                    if report.completed == report.rss_sample_at:
                        report.rss_early_mib = server.rss_mib()
        finally:
            close_client(client)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()) + 5)
    report.wall_s = time.perf_counter() - started
    report.rss_end_mib = server.rss_mib()
    report.timed_out = any(thread.is_alive() for thread in threads) or (
        report.completed < requests and time.monotonic() > deadline)
    # Requests never sent (client could not connect, time ran out) count as failed.
    report.failed += requests - report.completed
    if latencies:
        report.p50_s = statistics.median(latencies)
        report.p95_s = percentile(latencies, 0.95)
        report.max_s = max(latencies)
        report.throughput_rps = len(latencies) / report.wall_s
    if report.rss_early_mib and report.rss_end_mib:
        report.rss_growth_pct = 100 * (report.rss_end_mib / report.rss_early_mib - 1)
    return report


@dataclass
class OverloadReport:
    max_queue: int
    concurrency: int
    burst: int
    succeeded: int = 0
    rejected_busy: int = 0
    other_errors: int = 0
    unfinished: int = 0
    burst_wall_s: float | None = None
    recovered: bool = False
    busy_message: str | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return (self.rejected_busy > 0 and self.other_errors == 0 and self.unfinished == 0
                and self.succeeded + self.rejected_busy == self.burst and self.recovered)


def run_overload(server: Server, inputs, burst: int, max_queue: int, concurrency: int,
                 deadline: float) -> OverloadReport:
    """`burst` simultaneous requests against a `max_queue`-place queue, then one more."""
    report = OverloadReport(max_queue=max_queue, concurrency=concurrency, burst=burst)
    clients = [make_client(server.url) for _ in range(burst)]
    jobs_args = [request_args(inputs, index) for index in range(burst)]
    lock = threading.Lock()
    gate = threading.Barrier(burst)
    outcomes: list[str] = []

    def fire(client, args) -> None:
        try:
            gate.wait(timeout=max(0.1, deadline - time.monotonic()))
            generate(client, args, deadline - time.monotonic())
            outcome, error = "ok", None
        except Exception as exc:  # noqa: BLE001 - every outcome is classified
            outcome, error = ("busy" if is_busy(exc) else "error"), exc
        with lock:
            outcomes.append(outcome)
            if outcome == "busy" and report.busy_message is None:
                report.busy_message = str(error)
            if outcome == "error" and len(report.errors) < 10:
                report.errors.append(f"{error!r:.300}")

    started = time.perf_counter()
    threads = [threading.Thread(target=fire, args=pair, daemon=True)
               for pair in zip(clients, jobs_args)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()) + 5)
        report.burst_wall_s = time.perf_counter() - started
        report.succeeded = outcomes.count("ok")
        report.rejected_busy = outcomes.count("busy")
        report.other_errors = outcomes.count("error")
        report.unfinished = burst - len(outcomes)
        try:  # The server keeps serving: one more normal request.
            generate(clients[0], request_args(inputs, 1), deadline - time.monotonic())
            report.recovered = True
        except Exception as exc:  # noqa: BLE001 - reported
            report.errors.append(f"recovery: {exc!r:.300}")
    finally:
        for client in clients:
            close_client(client)
    return report


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.loadtest", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=16,
                        help="concurrent gradio_client clients (normal run) or simultaneous "
                        "requests (overload run)")
    parser.add_argument("--requests", type=int, default=400, help="requests in all")
    parser.add_argument("--weights", default=None,
                        help="weights folder or Hub repo id (default: the bundled weights/)")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="global limit in seconds, server start included")
    parser.add_argument("--overload", action="store_true",
                        help="start the app with a small queue and fire more requests than fit")
    parser.add_argument("--max-queue", type=int, default=2, help="S2A_MAX_QUEUE for --overload")
    parser.add_argument("--concurrency", type=int, default=1,
                        help="S2A_CONCURRENCY for --overload (the normal run keeps the app's)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.requests < 1:
        parser.error("--clients and --requests must be at least 1")
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    if args.overload and (args.max_queue < 1 or args.concurrency < 1):
        parser.error("--max-queue and --concurrency must be at least 1")
    if args.overload and args.clients <= args.max_queue + args.concurrency:
        parser.error(f"--overload needs more than --max-queue + --concurrency = "
                     f"{args.max_queue + args.concurrency} --clients to overflow the queue")
    return args


def format_load(report: LoadReport) -> str:
    def secs(value):
        return "-" if value is None else f"{value:.3f} s"

    def mib(value):
        return "-" if value is None else f"{value:.1f} MiB"

    growth = "-" if report.rss_growth_pct is None else f"{report.rss_growth_pct:+.1f} %"
    lines = [
        f"load test: {report.clients} clients, {report.requests} requests"
        f"{'  (TIMED OUT)' if report.timed_out else ''}",
        f"  failed      {report.failed} of {report.requests}",
        f"  latency     p50 {secs(report.p50_s)}  p95 {secs(report.p95_s)}  "
        f"max {secs(report.max_s)}",
        f"  throughput  {report.throughput_rps or 0:.2f} requests/s over {report.wall_s:.1f} s",
        f"  server RSS  {mib(report.rss_early_mib)} after request {report.rss_sample_at}, "
        f"{mib(report.rss_end_mib)} after request {report.requests} ({growth}, target < 10 %)",
        *[f"  error: {error}" for error in report.errors],
        "PASSED" if report.passed else "FAILED",
    ]
    return "\n".join(lines)


def format_overload(report: OverloadReport) -> str:
    lines = [
        f"overload test: {report.burst} simultaneous requests, queue of {report.max_queue}, "
        f"{report.concurrency} running at once",
        f"  succeeded {report.succeeded}, rejected busy {report.rejected_busy}, "
        f"other errors {report.other_errors}, unfinished {report.unfinished} "
        f"(all answered in {report.burst_wall_s or 0:.1f} s)",
        f"  busy message: {report.busy_message!r}",
        f"  next request after the burst: {'succeeded' if report.recovered else 'FAILED'}",
        *[f"  error: {error}" for error in report.errors],
        "PASSED" if report.passed else "FAILED",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    deadline = time.monotonic() + args.timeout
    env = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    if args.overload:
        env |= {"S2A_MAX_QUEUE": str(args.max_queue), "S2A_CONCURRENCY": str(args.concurrency)}
    with tempfile.TemporaryDirectory(prefix="s2a-loadtest-") as folder, \
            Server(args.weights, Path(folder), env) as server:
        try:
            server.wait_ready(max(1.0, deadline - time.monotonic()))
            inputs = example_inputs(Path(folder))
            if args.overload:
                report = run_overload(server, inputs, args.clients, args.max_queue,
                                      args.concurrency, deadline)
                text = format_overload(report)
            else:
                report = run_load(server, inputs, args.clients, args.requests, deadline)
                text = format_load(report)
            if server.process.poll() is not None:
                raise RuntimeError(f"app.py died during the run:\n{server.log_tail()}")
            if not report.passed:
                print(f"app.py log (tail):\n{server.log_tail()}", file=sys.stderr)
        except (RuntimeError, TimeoutError) as error:
            print(f"load test could not run: {error}", file=sys.stderr)
            return 2
    if args.json:
        print(json.dumps({"mode": "overload" if args.overload else "load",
                          "passed": report.passed, **asdict(report)}))
    else:
        print(text)
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
