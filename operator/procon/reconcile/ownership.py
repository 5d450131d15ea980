"""Which webhooks at the processor belong to which connection.

procon tags every webhook it creates with the identity of the connection it
serves (cluster, namespace, name, UID). The tag decides everything that is
allowed: procon deletes or edits only webhooks carrying its own tag, so an
endpoint created by a person, by another tool or by another cluster is never
touched silently.

The cluster part is what keeps two clusters sharing a processor account
apart: by default the UID of the cluster's ``kube-system`` namespace (see
:mod:`procon.settings`), unique without configuration. Only a webhook tagged
with this cluster's identity and the connection's namespace and name can be
a predecessor; one of another cluster is a sibling even with the same
namespace and name.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

MANAGED_BY = "procon-managed-by"
MANAGED_BY_VALUE = "procon.dev"
CLUSTER = "procon-cluster"
NAMESPACE = "procon-namespace"
NAME = "procon-name"
UID = "procon-uid"


@dataclass(frozen=True)
class Owner:
    """The connection a webhook serves."""

    cluster: str
    namespace: str
    name: str
    uid: str

    def metadata(self) -> dict[str, str]:
        """The tag written on the processor's webhook (a driver may add its own keys to it)."""
        return {
            MANAGED_BY: MANAGED_BY_VALUE,
            CLUSTER: self.cluster,
            NAMESPACE: self.namespace,
            NAME: self.name,
            UID: self.uid,
        }


class Relation(enum.Enum):
    """How an observed webhook relates to a connection."""

    MINE = "mine"  # tagged with this connection's UID
    PREDECESSOR = "predecessor"  # same cluster/namespace/name, older UID: a deleted earlier incarnation
    SIBLING = "sibling"  # another procon connection's
    FOREIGN = "foreign"  # not procon's


def relation(metadata: Mapping[str, str], owner: Owner) -> Relation:
    if metadata.get(MANAGED_BY) != MANAGED_BY_VALUE:
        return Relation.FOREIGN
    if metadata.get(UID) == owner.uid:
        return Relation.MINE
    same_place = (metadata.get(CLUSTER), metadata.get(NAMESPACE), metadata.get(NAME)) == (
        owner.cluster,
        owner.namespace,
        owner.name,
    )
    # A name is unique in a namespace, so a webhook tagged with this name but
    # another UID belongs to an object that no longer exists.
    return Relation.PREDECESSOR if same_place else Relation.SIBLING


def describe_owner(metadata: Mapping[str, str], owner: Owner) -> str:
    """The connection a procon webhook serves, as a person finds it: ``namespace/name``, and its
    cluster when it is not ``owner``'s."""
    named = f"{metadata.get(NAMESPACE, '?')}/{metadata.get(NAME, '?')}"
    cluster = metadata.get(CLUSTER)
    return named if cluster == owner.cluster else f"{named} in cluster {cluster or '?'}"
