"""Decide what to do with a connection's webhook: a pure function of desired and observed state.

Given the webhook the spec asks for, every webhook on the processor account,
and the id of the webhook whose signing secret is published, :func:`plan`
returns the actions that leave exactly one owned webhook serving the
connection. No I/O happens here, so every case (duplicates, crash leftovers,
conflicts, drift) is tested without a server.

The rules:

- The keeper is an owned webhook that matches the fields the processor cannot
  change in place (the driver's comparison says which: the URL, and whatever
  else its processor cannot change) *and* whose signing secret is published.
  A matching webhook whose secret is unknown is useless: the receiver could
  not verify its deliveries.
- Every other owned webhook is deleted (old URL, duplicates, leftovers of a
  crash), and so is every webhook of an earlier object with the same name.
- Except the published one: when it must be replaced (a field the processor
  cannot change in place changed, or its secret is rotated at a processor that
  cannot roll one), it is *retired*, deleted only after its replacement's
  secret is published. Make before break: a crash at any step leaves the old
  pair or the new pair intact, and a failed create leaves the old one serving.
- Where procon chooses the signing key (``adopt``), an owned webhook that
  matches the spec but whose id is not published is procon's own create whose
  answer was lost, signing with the key already published: it is adopted
  (its id published, its key set again) instead of deleted and recreated.
- The keeper is updated in place for what can change, as the driver's
  comparison says (events, enabled, its ownership tag, and the processor's own
  fields).
- A webhook procon does not own at the same URL is a conflict: reported,
  never touched, unless the connection allows replacing it. While it stands
  and nothing is owned yet, nothing is created: two endpoints at one URL
  would deliver every event twice.
- A webhook of another procon connection (of this cluster or another) at the
  same URL is never touched, whatever the conflict policy: the URL is taken.
  The connection that came first keeps it and stays Ready; the newcomer
  creates nothing and is the one reported. Should both own one (they
  created in the same moment), the older webhook holds the URL and the
  newcomer deletes its own: both sides order the two alike, by the
  processor's creation time where it reports one, else by id.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from procon.processors.base import Comparison, DesiredWebhook, ObservedWebhook, WebhookChanges
from procon.reconcile.ownership import Owner, Relation, describe_owner, relation


@dataclass(frozen=True)
class Deletion:
    webhook: ObservedWebhook
    why: str


@dataclass(frozen=True)
class WebhookPlan:
    """What to do, in order: delete, then create or update (and publish), then retire."""

    keep: ObservedWebhook | None = None
    update: WebhookChanges | None = None
    create: bool = False
    delete: tuple[Deletion, ...] = ()
    # Webhooks procon does not own at the URL.
    conflicts: tuple[ObservedWebhook, ...] = field(default=())
    # Webhooks of other procon connections holding the URL (only when nothing is kept).
    taken_by: tuple[ObservedWebhook, ...] = field(default=())
    # The published webhook being replaced: deleted once the new one's secret is published.
    retire: Deletion | None = None
    # ``keep`` is an unpublished webhook of procon's own: publish its id once its key is set.
    adopt: bool = False

    @property
    def blocked_by_conflict(self) -> bool:
        return self.keep is None and not self.create and bool(self.conflicts or self.taken_by)

    @property
    def is_noop(self) -> bool:
        return (
            self.keep is not None
            and self.update is None
            and not self.delete
            and self.retire is None
            and not self.adopt
        )


Compare = Callable[[ObservedWebhook, DesiredWebhook], Comparison]


def _older(webhook: ObservedWebhook, other: ObservedWebhook) -> bool:
    """Whether ``webhook`` was created before ``other``; the same answer on both connections' sides."""
    if webhook.created is not None and other.created is not None and webhook.created != other.created:
        return webhook.created < other.created
    return webhook.id < other.id


def plan(
    desired: DesiredWebhook,
    owner: Owner,
    observed: Sequence[ObservedWebhook],
    *,
    compare: Compare,
    published_id: str | None,
    replace_foreign: bool = False,
    signing_secret: str | None = None,
    replace_published: bool = False,
    adopt: bool = False,
) -> WebhookPlan:
    """The actions that leave exactly one owned webhook serving ``owner`` as ``desired``.

    ``compare`` is the driver's answer for one of its webhooks: recreate it (and why), update it
    in place (and what), or keep it as it is. The planner reads nothing else of a webhook but its
    id, URL, ownership tag and creation time.

    ``signing_secret``, when given, is a new key the kept webhook must switch to.
    ``replace_published``: the published webhook must be replaced by a new one even if it
    matches (a secret rotation where only a new webhook brings a new secret).
    ``adopt``: procon chose the published key (``desired.signing_secret``) and wrote it before
    any create, so an owned, matching, unpublished webhook is adopted rather than deleted.
    """
    deletions: list[Deletion] = []
    conflicts: list[ObservedWebhook] = []
    siblings: list[ObservedWebhook] = []
    keeper: ObservedWebhook | None = None
    retire: Deletion | None = None
    unpublished: list[ObservedWebhook] = []
    comparisons: dict[str, Comparison] = {}

    for webhook in observed:
        rel = relation(webhook.metadata, owner)
        if rel is Relation.MINE:
            comparisons[webhook.id] = comparison = compare(webhook, desired)
            mismatch = comparison.recreate_because
            if published_id and webhook.id == published_id and (mismatch or replace_published):
                if retire is None:
                    why = f"replaced: {mismatch}" if mismatch else "replaced: its signing secret is rotated"
                    retire = Deletion(webhook, why)
            elif mismatch:
                deletions.append(Deletion(webhook, f"stale: {mismatch}"))
            elif webhook.id != published_id:
                unpublished.append(webhook)
            elif keeper is None:
                keeper = webhook
            else:  # the processor listed one id twice; nothing to do for the copy
                continue
        elif rel is Relation.PREDECESSOR:
            why = "left by an earlier object with the same name"
            if published_id and webhook.id == published_id and retire is None:
                # An orphaned connection's Secret, taken over by its re-created namesake,
                # still names this webhook: it serves until its replacement is published.
                retire = Deletion(webhook, why)
            else:
                deletions.append(Deletion(webhook, why))
        elif webhook.url == desired.url:
            if rel is Relation.SIBLING:
                siblings.append(webhook)  # never deleted, Replace or not
            elif replace_foreign:
                deletions.append(Deletion(webhook, "not owned by procon, replaced as conflictPolicy allows"))
            else:
                conflicts.append(webhook)

    adopted = keeper is None and adopt and bool(unpublished) and desired.signing_secret is not None
    if adopted:
        keeper, unpublished = unpublished[0], unpublished[1:]
    deletions.extend(
        Deletion(webhook, "its signing secret is not published (duplicate or crash leftover)")
        for webhook in unpublished
    )

    holders = [s for s in siblings if keeper is None or _older(s, keeper)]
    if keeper is not None and holders:
        # Both connections created in the same moment: the older webhook holds the URL.
        deletions.append(
            Deletion(
                keeper,
                f"webhook {holders[0].id} of connection {describe_owner(holders[0].metadata, owner)} "
                "is older at the same URL",
            )
        )
        keeper, adopted = None, False

    if keeper is not None:
        update = comparisons[keeper.id].changes
        if signing_secret is not None:
            # A rotation: the processor must sign with the key just published.
            update = replace(update or WebhookChanges(), signing_secret=signing_secret)
        elif adopted:
            # Its key cannot be read back (it may be masked): set the published one.
            update = replace(update or WebhookChanges(), signing_secret=desired.signing_secret)
        return WebhookPlan(
            keep=keeper,
            update=update,
            delete=tuple(deletions),
            conflicts=tuple(conflicts),
            retire=retire,
            adopt=adopted,
        )
    return WebhookPlan(
        create=not conflicts and not holders,
        delete=tuple(deletions),
        conflicts=tuple(conflicts),
        taken_by=tuple(holders),
        retire=retire,
    )


def blocked_message(result: WebhookPlan, owner: Owner, url: str) -> str:
    """Why nothing was created at ``url``, and what can help: only advice that can."""
    parts: list[str] = []
    if result.taken_by:
        held = "; ".join(
            f"webhook {w.id} of connection {describe_owner(w.metadata, owner)}" for w in result.taken_by
        )
        parts.append(
            f"{url} is already served by another procon connection ({held}) and was left alone: "
            "one URL gets one webhook, or every event would arrive twice. "
            "Use another webhook.url, or remove this URL from that connection "
            "(if it was deleted and left its webhook, delete that webhook at the processor)"
        )
    if result.conflicts:
        ids = ", ".join(w.id for w in result.conflicts)
        parts.append(
            f"webhook {ids} at {url} is not owned by procon and was left alone; delete it at the processor "
            "or set webhook.conflictPolicy: Replace"
        )
    return ". ".join(parts)
