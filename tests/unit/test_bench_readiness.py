"""The fleet bench's time to Ready, from the connections' own Ready conditions (bench/_readiness.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from bench._readiness import (
    LISTING_TEMPLATE,
    ListedConnection,
    ReadyBook,
    parse_listing,
    ready_after_apply,
    ready_by,
)


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(UTC).timestamp()


APPLIED_AT = _epoch("2026-12-01T23:00:00Z") + 0.25  # the apply ended a quarter second past 23:00:00


def ready(
    name: str, since: str, *written: str, generation: str = "1", observed: str = "1"
) -> ListedConnection:
    return ListedConnection(name, generation, observed, "True", since, written)


def test_the_last_transition_counts_rounded_up_to_the_next_whole_second() -> None:
    """Stamped at 23:00:07.x, truncated to :07: the figure uses :08, never the :07 that may be early."""
    listed = [ready("a", "2026-12-01T23:00:03Z"), ready("b", "2026-12-01T23:00:07Z")]

    assert ready_after_apply(listed, APPLIED_AT) == pytest.approx(7.8)


def test_a_status_write_in_a_later_second_moves_the_figure_later_never_earlier() -> None:
    """The stamp is taken before the write; the API server's time of the status write bounds it."""
    listed = [ready("a", "2026-12-01T23:00:07Z", "2026-12-01T23:00:08Z")]

    assert ready_by(listed[0]) == _epoch("2026-12-01T23:00:09Z")
    assert ready_after_apply(listed, APPLIED_AT) == pytest.approx(8.8)


def test_the_figure_is_never_below_any_moment_a_connection_can_have_turned_ready() -> None:
    """Whatever fraction of a second the stamp was truncated from, the figure is not early."""
    since = "2026-12-01T23:00:05Z"
    figure = ready_after_apply([ready("a", since)], APPLIED_AT)
    assert figure is not None
    for fraction in (0.0, 0.5, 0.999):
        assert APPLIED_AT + figure >= _epoch(since) + fraction


def test_rounding_up_to_a_tenth_does_not_add_one_to_an_exact_tenth() -> None:
    applied = _epoch("2026-12-01T23:00:00Z") + 0.3
    assert ready_after_apply([ready("a", "2026-12-01T23:00:01Z")], applied) == pytest.approx(1.7)


@pytest.mark.parametrize(
    "connection",
    [
        ListedConnection("a", "1", "1", "False", "2026-12-01T23:00:01Z", ()),
        ListedConnection("a", "2", "1", "True", "2026-12-01T23:00:01Z", ()),  # Ready at an old generation
        ListedConnection("a", "1", "1", "True", "", ()),  # no transition time
    ],
)
def test_no_figure_unless_every_connection_is_ready_at_its_generation(connection: ListedConnection) -> None:
    listed = [ready("b", "2026-12-01T23:00:01Z"), connection]

    assert ready_after_apply(listed, APPLIED_AT) is None


def test_no_figure_for_no_connections() -> None:
    assert ready_after_apply([], APPLIED_AT) is None


def test_parse_listing_reads_the_tab_separated_lines_kubectl_prints() -> None:
    text = (
        "fleet-00000\t1\t1\tTrue\t2026-12-01T23:00:03Z\t2026-12-01T23:00:02Z 2026-12-01T23:00:03Z\n"
        "fleet-00001\t2\t\t\t\t\n"
        "\n"
    )

    assert parse_listing(text) == [
        ListedConnection(
            "fleet-00000",
            "1",
            "1",
            "True",
            "2026-12-01T23:00:03Z",
            ("2026-12-01T23:00:02Z", "2026-12-01T23:00:03Z"),
        ),
        ListedConnection("fleet-00001", "2", "", "", "", ()),
    ]


def test_the_listing_asks_for_the_ready_condition_and_status_write_times() -> None:
    assert 'conditions[?(@.type=="Ready")].lastTransitionTime' in LISTING_TEMPLATE
    assert 'managedFields[?(@.subresource=="status")].time' in LISTING_TEMPLATE


def test_a_list_answered_before_a_watch_event_does_not_undo_it() -> None:
    """The relist's answer (resourceVersion 5, not yet Ready) arrives after the watch reported the
    connection Ready (resourceVersion 9): the count keeps it Ready. Before, the count dropped it
    until the next relist, ten seconds later."""
    book = ReadyBook()
    assert book.note("fleet-00000", "9", "1", "1", "True")

    assert not book.note("fleet-00000", "5", "1", "", "")
    assert book.counts() == (1, 1)


def test_newer_news_replaces_older_and_a_generation_not_yet_observed_is_not_ready() -> None:
    book = ReadyBook()
    book.note("fleet-00000", "9", "1", "1", "True")
    book.note("fleet-00000", "12", "2", "1", "True")  # spec changed: Ready was for generation 1
    book.note("fleet-00001", "10", "1", "1", "True")

    assert book.counts() == (1, 2)
    book.forget("fleet-00001")
    assert book.counts() == (0, 1)
