"""Admission of processor requests (procon.processors.calls): the account's rate, its pause, the bound."""

from __future__ import annotations

import asyncio

import pytest

from procon import metrics
from procon.processors.calls import (
    MAX_RETRY_AFTER,
    AccountBucket,
    CallAdmission,
    RateLimit,
    admitted,
    retry_after_seconds,
    scope,
)


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"retry-after": "0"}, 0.0),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:10 GMT"}, 10.0),  # an HTTP date, 10 s from "now"
        ({"Retry-After": "999999"}, MAX_RETRY_AFTER),  # a hostile answer cannot stop an account for days
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "-3"}, None),
        ({}, None),
        (None, None),
    ],
)
def test_retry_after_is_read_as_rfc_9110_says_and_capped(
    headers: dict[str, str] | None, seconds: float | None
) -> None:
    assert retry_after_seconds(headers, now=lambda: 1445412480.0) == seconds


def test_a_bucket_allows_its_burst_then_its_rate() -> None:
    bucket = AccountBucket("fake", RateLimit(per_second=4.0, burst=3))
    slots = [bucket.reserve(10.0) for _ in range(6)]
    assert slots == [10.0, 10.0, 10.0, 10.25, 10.5, 10.75]


def test_after_a_pause_the_rate_resumes_without_a_burst() -> None:
    bucket = AccountBucket("fake", RateLimit(per_second=4.0, burst=3))
    assert bucket.pause(10.0, 2.0) == 2.0
    assert [bucket.reserve(10.5) for _ in range(3)] == [12.0, 12.25, 12.5]


def test_refusals_in_a_row_double_the_pause_and_an_answer_resets_it() -> None:
    bucket = AccountBucket("fake", RateLimit(per_second=100.0))
    assert [bucket.pause(0.0, None) for _ in range(7)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    bucket.answered()
    assert bucket.pause(100.0, None) == 1.0


def test_waits_are_counted_by_processor_and_limit() -> None:
    now = [0.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    admission = CallAdmission(2, clock=lambda: now[0], sleep=sleep)
    bucket = admission.bucket(("fake", "acct"), "fake-counted", RateLimit(per_second=2.0, burst=1))
    waits = metrics.RATE_LIMITER_WAITS.labels("fake-counted", "account")
    seconds = metrics.RATE_LIMITER_WAIT_SECONDS.labels("fake-counted", "account")

    async def three() -> None:
        with scope(admission, bucket):
            for _ in range(3):
                async with admitted():
                    pass

    asyncio.run(three())
    assert (waits._value.get(), seconds._value.get()) == (2.0, 1.0)
    assert now[0] == 1.0


def test_without_a_scope_a_request_goes_at_once() -> None:
    async def one() -> bool:
        async with admitted() as call:
            call.answered(429, {"Retry-After": "5"})  # nobody to pause: nothing happens
        return True

    assert asyncio.run(one())


def test_idle_buckets_are_forgotten_and_paused_ones_kept() -> None:
    now = [0.0]
    admission = CallAdmission(2, clock=lambda: now[0])
    limit = RateLimit(per_second=1.0)
    admission.bucket("a", "fake", limit)
    paused = admission.bucket("b", "fake", limit)
    admission.pause(paused, 10.0)
    admission.forget_idle()
    assert admission.entries() == 1
    assert admission.paused_accounts("fake") == 1
    now[0] = 20.0
    admission.forget_idle()
    assert admission.entries() == 0
