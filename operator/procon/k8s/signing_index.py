"""Which of procon's signing Secrets exist, as the watch of them last said.

A new connection's first pass used to read its signing Secret only to find it absent: a request
per connection, and a fleet's first pass is thousands of them. The metadata-only watch of the
Secrets labelled ``app.kubernetes.io/managed-by=procon`` (procon.k8s.secret_watch) already says
which exist, so a name it has not seen needs no read.

Knowing a name absent is only trusted where a create follows: a create fails on a Secret that
exists, whoever made it (a Secret without the label, which this watch cannot see, included), and
the pass then starts over and reads it. A pass that would act otherwise on "nothing published"
(delete a webhook of its own as unpublished) reads the Secret first (``confirm``, see
procon.k8s.kube.Kube.read_published). Until a scope's listing has finished (at start, and
whenever the watch lists again) nothing in it is known absent, and a read is made as before.
"""

from __future__ import annotations

Key = tuple[str, str]  # (namespace, name)
Scope = str | None  # a namespace the watch lists, or None for the whole cluster


class SigningSecretIndex:
    """The names of procon's signing Secrets per watched scope, kept up by the watch."""

    def __init__(self) -> None:
        self._listed: set[Scope] = set()  # scopes whose latest listing has finished
        self._names: set[Key] = set()
        self._listing: dict[Scope, set[Key]] = {}  # scopes being listed, and what came so far

    def listing(self, scope: Scope) -> None:
        """The watch of ``scope`` lists afresh: until it finishes, names there are not known absent."""
        self._listed.discard(scope)
        self._listing[scope] = set()

    def listed_one(self, scope: Scope, key: Key) -> None:
        self._listing.setdefault(scope, set()).add(key)

    def listed(self, scope: Scope) -> None:
        """The listing of ``scope`` finished: its names replace what was known there."""
        found = self._listing.pop(scope, set())
        self._names = {k for k in self._names if not _within(k, scope)} | found
        self._listed.add(scope)

    def present(self, key: Key) -> None:
        """An event (or a write of this process) says the Secret exists."""
        self._names.add(key)
        for scope, found in self._listing.items():
            if _within(key, scope):
                found.add(key)  # a listing that began before the write may not hold it

    def gone(self, key: Key) -> None:
        """A DELETED event: removed, or no longer labelled as procon's."""
        self._names.discard(key)

    def known_absent(self, key: Key) -> bool:
        """Whether the watch has listed the Secret's scope and does not know the Secret."""
        return key not in self._names and (None in self._listed or key[0] in self._listed)

    def __len__(self) -> int:
        return len(self._names)


def _within(key: Key, scope: Scope) -> bool:
    return scope is None or key[0] == scope
