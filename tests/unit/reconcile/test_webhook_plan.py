"""The webhook planner, case by case: no server, just desired and observed state.

The webhooks are Stripe's, compared by the Stripe driver's rules: the planner's
decisions are the same for every processor, and Stripe's endpoints have the most
fields the processor cannot change in place.
"""

from __future__ import annotations

from typing import Any

from procon.processors.stripe.webhook import CONNECT, StripeDesired, StripeEndpoint, compare
from procon.reconcile import webhook_plan
from procon.reconcile.ownership import Owner, Relation, relation
from procon.reconcile.webhook_plan import WebhookPlan, blocked_message


def plan(*args: Any, **kwargs: Any) -> WebhookPlan:
    return webhook_plan.plan(*args, compare=compare, **kwargs)


OWNER = Owner(cluster="c1", namespace="shop", name="stripe", uid="uid-1")
URL = "https://hooks.example.com/stripe"


def desired(**overrides: object) -> StripeDesired:
    fields: dict[str, object] = {
        "url": URL,
        "events": ("charge.succeeded", "payout.paid"),
        "description": "shop",
        "metadata": OWNER.metadata(),
    }
    fields.update(overrides)
    return StripeDesired(**fields)  # type: ignore[arg-type]


def observed(id_: str, *, owner: Owner | None = OWNER, **overrides: object) -> StripeEndpoint:
    fields: dict[str, object] = {
        "id": id_,
        "url": URL,
        "events": ("charge.succeeded", "payout.paid"),
        "description": "shop",
        "enabled": True,
        "metadata": owner.metadata() if owner else {},
    }
    fields.update(overrides)
    return StripeEndpoint(**fields)  # type: ignore[arg-type]


def test_nothing_observed_creates() -> None:
    result = plan(desired(), OWNER, [], published_id=None)
    assert result.create
    assert result.keep is None
    assert result.delete == ()


def test_published_matching_webhook_is_kept_untouched() -> None:
    result = plan(desired(), OWNER, [observed("we_1")], published_id="we_1")
    assert result.keep is not None
    assert result.keep.id == "we_1"
    assert result.is_noop
    assert not result.create


def test_event_change_updates_in_place() -> None:
    result = plan(desired(events=("charge.refunded",)), OWNER, [observed("we_1")], published_id="we_1")
    assert result.update is not None
    assert result.update.events == ("charge.refunded",)
    assert result.update.describe() == ["events"]
    assert not result.create


def test_disabled_webhook_is_enabled() -> None:
    result = plan(desired(), OWNER, [observed("we_1", enabled=False, status="disabled")], published_id="we_1")
    assert result.update is not None
    assert result.update.enabled is True


def test_description_removed_is_cleared() -> None:
    result = plan(desired(description=None), OWNER, [observed("we_1")], published_id="we_1")
    assert result.update is not None
    assert result.update.description == ""


def test_tampered_ownership_metadata_is_restored() -> None:
    tampered = {**OWNER.metadata(), "procon-name": "someone-else"}
    # Still ours by UID; the other tag fields are put back.
    result = plan(desired(), OWNER, [observed("we_1", metadata=tampered)], published_id="we_1")
    assert result.update is not None
    assert result.update.metadata == OWNER.metadata()


def test_url_change_recreates_before_retiring_the_published_one() -> None:
    result = plan(desired(url="https://hooks.example.com/v2"), OWNER, [observed("we_1")], published_id="we_1")
    assert result.create
    # Make before break: the published webhook goes only after its replacement is published.
    assert result.delete == ()
    assert result.retire is not None
    assert (result.retire.webhook.id, result.retire.why) == ("we_1", "replaced: its URL changed")


def test_api_version_and_connect_changes_recreate() -> None:
    result = plan(desired(api_version="2026-06-24.dahlia"), OWNER, [observed("we_1")], published_id="we_1")
    assert result.create
    assert result.retire is not None
    assert result.retire.why == "replaced: its API version changed"
    connect = desired(connect=True, metadata={**OWNER.metadata(), CONNECT: "true"})
    result = plan(connect, OWNER, [observed("we_1")], published_id="we_1")
    assert result.create
    assert result.retire is not None
    assert result.retire.why == "replaced: its Connect setting changed"


def test_stale_unpublished_webhooks_are_deleted_first() -> None:
    # Not published, so nobody can verify their deliveries: nothing to keep them for.
    webhooks = [observed("we_old", url="https://old.example.com"), observed("we_1")]
    result = plan(desired(url="https://hooks.example.com/v2"), OWNER, webhooks, published_id="we_1")
    assert [(d.webhook.id, d.why) for d in result.delete] == [("we_old", "stale: its URL changed")]
    assert result.retire is not None
    assert result.retire.webhook.id == "we_1"


def test_rotation_by_a_new_webhook_retires_the_published_one_after() -> None:
    result = plan(desired(), OWNER, [observed("we_1")], published_id="we_1", replace_published=True)
    assert result.create
    assert result.keep is None
    assert result.delete == ()
    assert result.retire is not None
    assert (result.retire.webhook.id, result.retire.why) == (
        "we_1",
        "replaced: its signing secret is rotated",
    )


def test_a_conflict_at_the_new_url_keeps_the_old_webhook_serving() -> None:
    foreign = observed("we_f", owner=None, url="https://hooks.example.com/v2")
    result = plan(
        desired(url="https://hooks.example.com/v2"), OWNER, [observed("we_1"), foreign], published_id="we_1"
    )
    assert result.blocked_by_conflict
    assert result.delete == ()  # the published webhook is not deleted: nothing replaces it


def test_lost_create_is_adopted_where_procon_chose_the_key() -> None:
    # Checkout.com: the key was published before the create; the create's answer was lost.
    want = desired(signing_secret="k1")
    result = plan(want, OWNER, [observed("wf_1")], published_id=None, adopt=True)
    assert not result.create
    assert result.adopt
    assert result.keep is not None
    assert result.keep.id == "wf_1"
    assert result.delete == ()
    # Its key cannot be read back: it is set again, to the published one.
    assert result.update is not None
    assert result.update.signing_secret == "k1"
    assert not result.is_noop


def test_adoption_keeps_one_and_deletes_other_duplicates() -> None:
    want = desired(signing_secret="k1")
    result = plan(want, OWNER, [observed("wf_1"), observed("wf_2")], published_id=None, adopt=True)
    assert result.keep is not None
    assert result.keep.id == "wf_1"
    assert [d.webhook.id for d in result.delete] == ["wf_2"]


def test_adoption_after_a_url_change_retires_the_old_one() -> None:
    want = desired(url="https://hooks.example.com/v2", signing_secret="k1")
    webhooks = [observed("wf_old"), observed("wf_new", url="https://hooks.example.com/v2")]
    result = plan(want, OWNER, webhooks, published_id="wf_old", adopt=True)
    assert result.adopt
    assert result.keep is not None
    assert result.keep.id == "wf_new"
    assert result.retire is not None
    assert result.retire.webhook.id == "wf_old"


def test_no_adoption_where_the_processor_chose_the_secret() -> None:
    # Stripe: an unpublished endpoint's secret is unknowable.
    result = plan(desired(), OWNER, [observed("we_1")], published_id=None, adopt=False)
    assert result.create
    assert not result.adopt
    assert [d.webhook.id for d in result.delete] == ["we_1"]


def test_duplicates_are_deleted_and_the_published_one_kept() -> None:
    webhooks = [observed("we_3"), observed("we_2"), observed("we_1")]
    result = plan(desired(), OWNER, webhooks, published_id="we_2")
    assert result.keep is not None
    assert result.keep.id == "we_2"
    assert sorted(d.webhook.id for d in result.delete) == ["we_1", "we_3"]


def test_owned_webhook_without_published_secret_is_replaced() -> None:
    # The crash case: created, never published. Its secret is unknowable.
    result = plan(desired(), OWNER, [observed("we_1")], published_id=None)
    assert result.create
    assert [d.webhook.id for d in result.delete] == ["we_1"]


def test_predecessor_webhooks_are_deleted_even_at_other_urls() -> None:
    earlier = Owner(cluster="c1", namespace="shop", name="stripe", uid="uid-0")
    result = plan(
        desired(), OWNER, [observed("we_0", owner=earlier, url="https://old.example.com")], published_id=None
    )
    assert [d.webhook.id for d in result.delete] == ["we_0"]
    assert result.create


def test_a_predecessors_published_webhook_serves_until_its_replacement_is_published() -> None:
    # An orphaned connection's Secret, taken over by its re-created namesake, names the
    # earlier object's webhook: deleting it before the new one exists would leave a gap.
    earlier = Owner(cluster="c1", namespace="shop", name="stripe", uid="uid-0")
    webhooks = [observed("we_0", owner=earlier), observed("we_00", owner=earlier)]
    result = plan(desired(), OWNER, webhooks, published_id="we_0")
    assert result.create
    assert [d.webhook.id for d in result.delete] == ["we_00"]
    assert result.retire is not None
    assert result.retire.webhook.id == "we_0"


def test_other_connections_and_other_clusters_are_never_touched() -> None:
    sibling = Owner(cluster="c1", namespace="shop", name="other", uid="uid-9")
    other_cluster = Owner(cluster="c2", namespace="shop", name="stripe", uid="uid-8")
    webhooks = [
        observed("we_s", owner=sibling, url="https://elsewhere.example.com"),
        observed("we_c", owner=other_cluster, url="https://elsewhere.example.com"),
    ]
    result = plan(desired(), OWNER, webhooks, published_id=None)
    assert result.delete == ()
    assert result.conflicts == ()
    assert result.create


def test_foreign_webhook_at_same_url_blocks_creation_and_is_reported() -> None:
    result = plan(desired(), OWNER, [observed("we_f", owner=None)], published_id=None)
    assert result.blocked_by_conflict
    assert not result.create
    assert [w.id for w in result.conflicts] == ["we_f"]
    assert result.delete == ()


def test_foreign_webhook_is_replaced_only_when_allowed() -> None:
    result = plan(desired(), OWNER, [observed("we_f", owner=None)], published_id=None, replace_foreign=True)
    assert result.create
    assert [d.webhook.id for d in result.delete] == ["we_f"]


def test_sibling_at_same_url_blocks_the_newcomer_even_with_replace() -> None:
    sibling = Owner(cluster="c1", namespace="shop", name="other", uid="uid-9")
    result = plan(
        desired(), OWNER, [observed("we_s", owner=sibling)], published_id=None, replace_foreign=True
    )
    assert result.blocked_by_conflict
    assert not result.create
    assert result.delete == ()
    assert [w.id for w in result.taken_by] == ["we_s"]
    assert result.conflicts == ()


def test_other_clusters_webhook_with_the_same_name_is_a_sibling_never_a_predecessor() -> None:
    other_cluster = Owner(cluster="c2", namespace="shop", name="stripe", uid="uid-8")
    result = plan(desired(), OWNER, [observed("we_c", owner=other_cluster)], published_id=None)
    assert result.delete == ()
    assert [w.id for w in result.taken_by] == ["we_c"]
    assert relation(other_cluster.metadata(), OWNER) is Relation.SIBLING


def test_owner_of_a_working_webhook_stays_beside_a_younger_sibling() -> None:
    """Another connection arriving at the URL never turns the owner's plan into a conflict."""
    sibling = Owner(cluster="c2", namespace="team-b", name="shop", uid="uid-9")
    webhooks = [observed("we_s", owner=sibling, created=200), observed("we_1", created=100)]
    result = plan(desired(), OWNER, webhooks, published_id="we_1", replace_foreign=True)
    assert result.keep is not None
    assert result.keep.id == "we_1"
    assert result.is_noop
    assert result.conflicts == ()
    assert result.taken_by == ()
    assert not result.blocked_by_conflict


def test_of_two_created_in_the_same_moment_the_younger_yields() -> None:
    sibling = Owner(cluster="c1", namespace="team-b", name="shop", uid="uid-9")
    webhooks = [observed("we_1", created=200), observed("we_s", owner=sibling, created=100)]
    result = plan(desired(), OWNER, webhooks, published_id="we_1")
    assert result.keep is None
    assert not result.create
    assert result.blocked_by_conflict
    assert [d.webhook.id for d in result.delete] == ["we_1"]
    assert "team-b/shop" in result.delete[0].why
    assert [w.id for w in result.taken_by] == ["we_s"]


def test_both_sides_of_a_race_agree_who_yields() -> None:
    """Without creation times (Checkout.com), or within one second, both order the two by id."""
    other = Owner(cluster="c1", namespace="team-b", name="shop", uid="uid-9")
    for created in (None, 100):
        webhooks = [observed("we_a", created=created), observed("we_b", owner=other, created=created)]
        ours = plan(desired(), OWNER, webhooks, published_id="we_a")
        theirs = plan(desired(metadata=other.metadata()), other, webhooks, published_id="we_b")
        assert ours.keep is not None
        assert ours.keep.id == "we_a"
        assert theirs.keep is None
        assert [d.webhook.id for d in theirs.delete] == ["we_b"]


def test_blocked_message_names_the_other_connection_and_gives_only_advice_that_can_help() -> None:
    same_cluster = Owner(cluster="c1", namespace="team-a", name="shop", uid="uid-9")
    other_cluster = Owner(cluster="c2", namespace="team-c", name="pay", uid="uid-7")
    webhooks = [observed("we_s", owner=same_cluster), observed("we_c", owner=other_cluster)]
    result = plan(desired(), OWNER, webhooks, published_id=None)
    message = blocked_message(result, OWNER, URL)
    assert "webhook we_s of connection team-a/shop;" in message
    assert "webhook we_c of connection team-c/pay in cluster c2" in message
    assert "Replace" not in message

    foreign = plan(desired(), OWNER, [observed("we_f", owner=None)], published_id=None)
    assert "conflictPolicy: Replace" in blocked_message(foreign, OWNER, URL)


def test_foreign_conflict_does_not_remove_an_existing_keeper() -> None:
    webhooks = [observed("we_f", owner=None), observed("we_1")]
    result = plan(desired(), OWNER, webhooks, published_id="we_1")
    assert result.keep is not None
    assert result.keep.id == "we_1"
    assert [w.id for w in result.conflicts] == ["we_f"]
    assert not result.blocked_by_conflict


def test_foreign_webhooks_elsewhere_are_ignored() -> None:
    result = plan(
        desired(), OWNER, [observed("we_x", owner=None, url="https://x.example.com")], published_id=None
    )
    assert result.create
    assert result.conflicts == ()
    assert result.delete == ()


def test_relation() -> None:
    assert relation({}, OWNER) is Relation.FOREIGN
    assert relation({"procon-managed-by": "someone"}, OWNER) is Relation.FOREIGN
    assert relation(OWNER.metadata(), OWNER) is Relation.MINE
