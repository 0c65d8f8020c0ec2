"""The soak's leak figure: a least-squares RSS slope per process, in MiB per hour."""

from __future__ import annotations

from bench.runner import rss_slopes, soak_settle_seconds


def test_a_steady_growth_is_its_rate_per_hour_and_flat_is_zero() -> None:
    samples = [(t, {"process 1": 100 + t / 360, "process 2": 90.0}) for t in range(60, 660, 10)]
    slopes = rss_slopes(samples)
    assert slopes == {"process 1": 10.0, "process 2": 0.0}


def test_noise_around_a_level_is_no_growth_and_too_few_samples_say_nothing() -> None:
    wobble = [(t, {"p": 100 + (1 if i % 2 else -1)}) for i, t in enumerate(range(0, 600, 10))]
    assert abs(rss_slopes(wobble)["p"]) < 1
    assert rss_slopes([(0, {"p": 1.0}), (10, {"p": 2.0})]) == {}
    assert rss_slopes([]) == {}


def test_the_slope_starts_after_the_warm_up_half_of_the_soak() -> None:
    assert soak_settle_seconds(600) == 300
    assert soak_settle_seconds(80) == 60  # never less than a minute
    # a bounded cache filling in the first half levels off: it is no leak in the second
    fill = [(t, {"p": 117 + min(t, 300) / 25}) for t in range(0, 610, 10)]
    second_half = [(t, m) for t, m in fill if t >= soak_settle_seconds(600)]
    assert rss_slopes(fill)["p"] > 20
    assert rss_slopes(second_half)["p"] == 0
