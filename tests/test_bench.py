"""The benchmark runs on the tiny weights and reports every step (no timing assertions)."""

from __future__ import annotations

import json

from s2a.pipeline import STEPS
from tools import bench


def test_pipeline_report_structure(tiny_weights, capsys):
    report = bench.run_pipeline_bench(tiny_weights, calls=5, warmup=1, threads=(1, 2),
                                      cold_calls=1)
    assert set(report["threads"]) == {"1", "2"}
    for result in report["threads"].values():
        assert set(result["steps"]) == set(STEPS)
        for timing in [*result["steps"].values(), result["end_to_end"], result["generator"]]:
            assert 0 < timing["p50_ms"] <= timing["p95_ms"]
        assert result["overhead_ratio"] > 0
    cold = report["cold_start"]
    assert cold["total_s"] > 0 and cold["load_s"] > 0 and cold["peak_rss_mb"] > 0
    table = bench.format_report(report)
    for step in STEPS:
        assert step in table
    assert "end to end" in table and "cold start" in table

    assert bench.main(["--weights", tiny_weights, "--calls", "3", "--warmup", "0",
                       "--threads", "1", "--no-cold", "--json"]) == 0
    parsed = json.loads(capsys.readouterr().out)
    assert set(parsed["threads"]["1"]["steps"]) == set(STEPS)


def test_bank_report_structure(capsys):
    rows = bench.run_bank_bench((300,), ("flat", "hnsw", "ivf"), queries=5)
    assert [r["index"] for r in rows] == ["flat", "hnsw", "ivf"]
    flat = rows[0]
    assert flat["recall_at_10"] == 1.0
    for r in rows:
        assert r["n"] == 300 and 0 <= r["recall_at_10"] <= 1
        assert 0 < r["search_p50_ms"] <= r["search_p95_ms"] and r["build_s"] > 0
    assert "recall@10" in bench.format_bank(rows)
    assert bench.main(["--bank-size", "200", "--index-types", "flat,hnsw", "--queries", "3",
                       "--json"]) == 0
    assert [r["index"] for r in json.loads(capsys.readouterr().out)["bank"]] == ["flat", "hnsw"]


def test_per_part_report_times_both_models(tiny_part_weights):
    report = bench.run_pipeline_bench(tiny_part_weights, calls=3, warmup=1, threads=(1,),
                                      cold=False)
    assert report["per_part_model"]
    parts = report["per_part"]["1"]
    for step in STEPS:  # every step is timed on the per-part path too
        assert 0 < parts["steps"][step]["p50_ms"], step
    assert 0 < parts["live"]["p50_ms"] <= parts["live"]["p95_ms"]
    assert "per-part live" in bench.format_report(report)


def test_live_in_a_row_and_the_frozen_eager_comparison_are_reported(tiny_weights):
    report = bench.run_pipeline_bench(tiny_weights, calls=3, warmup=1, threads=(1,), cold=False)
    one = report["threads"]["1"]
    assert 0 < one["live_in_a_row"]["p50_ms"] <= one["live_in_a_row"]["p95_ms"]
    ab = report["freeze_ab"]["1"]
    for mode in ("frozen", "eager"):
        assert 0 < ab[mode]["live"]["p50_ms"] and 0 < ab[mode]["generator"]["p50_ms"]
    text = bench.format_report(report)
    for row in ("live in a row", "A/B eager live", "A/B frozen gen.", "best in a row"):
        assert row in text, row
