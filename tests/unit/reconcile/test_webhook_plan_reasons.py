"""The planner's reasons and messages, word for word, and the edges its case tests leave open.

A deletion's reason is what the event and the log say about a webhook procon deleted; the blocked
message is what a person reads in the condition when nothing could be created. Both are pinned
here, as are the defaults a caller relies on by leaving an argument out.
"""

from __future__ import annotations

from procon.reconcile.ownership import Owner
from procon.reconcile.webhook_plan import blocked_message
from tests.unit.reconcile.test_webhook_plan import OWNER, URL, desired, observed, plan

EARLIER = Owner(cluster="c1", namespace="shop", name="stripe", uid="uid-0")


def test_every_deletion_says_why_in_these_words() -> None:
    webhooks = [
        observed("we_pub"),
        observed("we_dup"),  # owned, matching, its secret unknown
        observed("we_pre", owner=EARLIER),
        observed("we_foreign", owner=None),
    ]
    result = plan(desired(), OWNER, webhooks, published_id="we_pub", replace_foreign=True)
    assert [(d.webhook.id, d.why) for d in result.delete] == [
        ("we_pre", "left by an earlier object with the same name"),
        ("we_foreign", "not owned by procon, replaced as conflictPolicy allows"),
        ("we_dup", "its signing secret is not published (duplicate or crash leftover)"),
    ]
    assert result.keep is not None
    assert result.keep.id == "we_pub"


def test_a_predecessors_published_webhook_is_retired_with_its_reason() -> None:
    result = plan(desired(), OWNER, [observed("we_pre", owner=EARLIER)], published_id="we_pre")
    assert result.retire is not None
    assert (result.retire.webhook.id, result.retire.why) == (
        "we_pre",
        "left by an earlier object with the same name",
    )
    assert result.create


def test_the_younger_of_two_webhooks_created_at_once_says_which_is_older() -> None:
    sibling = Owner(cluster="c1", namespace="team-b", name="shop", uid="uid-b")
    webhooks = [observed("we_b", owner=sibling, created=1), observed("we_a", created=2)]
    result = plan(desired(), OWNER, webhooks, published_id="we_a")
    assert [(d.webhook.id, d.why) for d in result.delete] == [
        ("we_a", "webhook we_b of connection team-b/shop is older at the same URL")
    ]
    assert result.keep is None
    assert not result.adopt


def test_a_webhook_listed_twice_is_kept_once_and_the_rest_still_planned() -> None:
    """The processor listed the published webhook twice: the copy is skipped, and the webhooks
    listed after it are still planned."""
    webhooks = [observed("we_1"), observed("we_1"), observed("we_stale", url="https://old.example.com")]
    result = plan(desired(), OWNER, webhooks, published_id="we_1")
    assert result.keep is not None
    assert result.keep.id == "we_1"
    assert [(d.webhook.id, d.why) for d in result.delete] == [("we_stale", "stale: its URL changed")]


def test_adoption_is_only_on_request() -> None:
    """Without ``adopt`` a matching unpublished webhook is deleted, even where the desired webhook
    names a signing key: only the caller knows that procon wrote that key before creating."""
    result = plan(desired(signing_secret="k1"), OWNER, [observed("wf_1")], published_id=None)
    assert not result.adopt
    assert result.keep is None
    assert result.create
    assert [d.webhook.id for d in result.delete] == ["wf_1"]


def test_the_blocked_message_word_for_word() -> None:
    sibling = Owner(cluster="c1", namespace="team-a", name="shop", uid="uid-9")
    webhooks = [
        observed("we_s", owner=sibling),
        observed("we_f1", owner=None),
        observed("we_f2", owner=None),
    ]
    result = plan(desired(), OWNER, webhooks, published_id=None)
    assert blocked_message(result, OWNER, URL) == (
        f"{URL} is already served by another procon connection (webhook we_s of connection team-a/shop) "
        "and was left alone: one URL gets one webhook, or every event would arrive twice. "
        "Use another webhook.url, or remove this URL from that connection (if it was deleted and left "
        "its webhook, delete that webhook at the processor). "
        f"webhook we_f1, we_f2 at {URL} is not owned by procon and was left alone; delete it at the "
        "processor or set webhook.conflictPolicy: Replace"
    )
