"""What kopf keeps on a connection for its own use: nothing copied from the object.

kopf's default diff base (``AnnotationsDiffBaseStorage``) writes the object's
spec, labels and annotations, as JSON, into an annotation of the object, so
that it can tell on.create from on.update and give handlers a diff. The
copy counts towards the same 256 KiB limit on all annotations as the
originals: a connection carrying more than half of that in (legal)
annotations of its own can never be patched by kopf again, so its
finalizer is never removed, and it, and its namespace, stay Terminating.

procon needs no diff. The connection is reconciled level-based by a worker
of procon's work queue that reads it afresh each time, deletion included
(procon's finalizer is the reconciler's, see procon.k8s.handlers); kopf has
no change handler to give a diff to, and on.event handlers never look at one.
kopf still builds and compares the essence of every event it receives, so
procon's diff base remembers nothing, builds nothing and writes nothing: to
kopf every object looks exactly as it was when last handled. Should a change
handler ever come back, no copy of the object is written either.

Earlier releases wrote kopf's progress records (``procon.dev/connection_deleted``,
while an on.delete handler retried) and ``procon.dev/last-handled-configuration``;
neither is read or updated any more.
"""

from __future__ import annotations

from collections.abc import Iterable

import kopf


class NoDiffBase(kopf.DiffBaseStorage):
    """A diff base that keeps no copy of the object: every object looks unchanged since last handled."""

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[kopf.FieldSpec] | None = None
    ) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        # Not None: kopf reads None as "never handled" and would see a creation in every event.
        return kopf.BodyEssence()

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None
