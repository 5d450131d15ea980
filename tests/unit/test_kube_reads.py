"""What procon.k8s.kube.Kube asks the API server for, over a stand-in of the core API that counts
requests: credentials from the watch's cache (a LIST only when the watch has not delivered the
Secret), and one read of the signing Secret per reconcile step, its ownership checked as strictly
as ever. (The integration tests count the same on the real API server.)"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from procon.k8s.kube import Kube
from procon.reconcile.ports import Connection, PendingCreate, SecretNotOwned, StaleObject
from tests.unit.reconcile.doubles import SPEC

NAMESPACE = "shop"
KEY_MATERIAL = "rk_test_51" + "k" * 40
CREDENTIALS_LABELS = {"procon.dev/credentials": "true"}


class RawResponse:
    """A raw (``_preload_content=False``) answer: what a metadata-only read returns."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.status, self.reason, self._body = 200, "OK", json.dumps(body).encode()

    async def __aenter__(self) -> RawResponse:
        return self

    async def __aexit__(self, *_: object) -> None:
        return None

    async def read(self) -> bytes:
        return self._body


class FakeCore:
    """Secrets in memory with the API server's semantics that matter here: label-selected lists,
    409 on a create of an existing name, merge patches, and a resourceVersion in a patch as its
    precondition."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.calls: Counter[str] = Counter()
        self.written_as_models = 0  # writes whose answer was deserialized into a client model
        self._versions = itertools.count(100)

    def put(self, name: str, *, labels: dict[str, str], data: dict[str, str], **meta: Any) -> dict[str, Any]:
        obj = {
            "metadata": {
                "name": name,
                "namespace": NAMESPACE,
                "uid": f"uid-{name}",
                "labels": labels,
                **meta,
            },
            "data": dict(data),
        }
        obj["metadata"]["resourceVersion"] = str(next(self._versions))
        self.objects[name] = obj
        return copy.deepcopy(obj)

    @staticmethod
    def _model(obj: dict[str, Any]) -> client.V1Secret:
        meta = obj["metadata"]
        return client.V1Secret(
            metadata=client.V1ObjectMeta(
                name=meta["name"],
                namespace=meta["namespace"],
                uid=meta["uid"],
                resource_version=meta["resourceVersion"],
                labels=dict(meta.get("labels") or {}),
                annotations=dict(meta.get("annotations") or {}) or None,
                owner_references=[
                    client.V1OwnerReference(
                        api_version=r["apiVersion"], kind=r["kind"], name=r["name"], uid=r["uid"]
                    )
                    for r in meta.get("ownerReferences") or []
                ]
                or None,
            ),
            data=dict(obj.get("data") or {}),
        )

    async def list_namespaced_secret(
        self, namespace: str, *, field_selector: str, label_selector: str
    ) -> client.V1SecretList:
        self.calls["LIST"] += 1
        name = field_selector.removeprefix("metadata.name=")
        label, value = label_selector.split("=")
        obj = self.objects.get(name)
        matches = obj is not None and obj["metadata"]["labels"].get(label) == value
        return client.V1SecretList(items=[self._model(obj)] if matches and obj else [])

    async def read_namespaced_secret(self, name: str, namespace: str, **options: Any) -> Any:
        self.calls["GET"] += 1
        obj = self.objects.get(name)
        if obj is None:
            raise ApiException(status=404, reason="Not Found")
        if options.get("_preload_content") is False:
            return RawResponse({"metadata": copy.deepcopy(obj["metadata"])})
        return self._model(obj)

    def _answer(self, obj: dict[str, Any], options: dict[str, Any]) -> Any:
        """The written Secret, raw when asked so (as procon asks for its writes), else as a model."""
        if options.get("_preload_content") is False:
            return RawResponse(copy.deepcopy(obj))
        self.written_as_models += 1
        return self._model(obj)

    async def create_namespaced_secret(self, namespace: str, body: dict[str, Any], **options: Any) -> Any:
        self.calls["POST"] += 1
        name = body["metadata"]["name"]
        if name in self.objects:
            raise ApiException(status=409, reason="AlreadyExists")
        self.put(name, **{k: v for k, v in body["metadata"].items() if k != "name"}, data=body["data"])
        return self._answer(self.objects[name], options)

    async def patch_namespaced_secret(
        self, name: str, namespace: str, patch: dict[str, Any], **options: Any
    ) -> Any:
        self.calls["PATCH"] += 1
        obj = self.objects.get(name)
        if obj is None:
            raise ApiException(status=404, reason="Not Found")
        meta = dict(patch.get("metadata") or {})
        expected = meta.pop("resourceVersion", None)
        if expected is not None and expected != obj["metadata"]["resourceVersion"]:
            raise ApiException(status=409, reason="Conflict")
        for field in ("labels", "annotations"):
            merged = {**(obj["metadata"].get(field) or {}), **(meta.get(field) or {})}
            obj["metadata"][field] = {k: v for k, v in merged.items() if v is not None}
        if "ownerReferences" in meta:
            obj["metadata"]["ownerReferences"] = meta["ownerReferences"]
        data = {**obj["data"], **(patch.get("data") or {})}
        obj["data"] = {k: v for k, v in data.items() if v is not None}
        obj["metadata"]["resourceVersion"] = str(next(self._versions))
        return self._answer(obj, options)


class FakeCustom:
    """One connection; reads as the API server answers them: a plain read from etcd (counted as
    ``quorum``), and one naming a resourceVersion from the watch cache (``cached``, with the
    version asked for), which answers 504 while ``cache_behind``."""

    def __init__(self, obj: dict[str, Any]) -> None:
        self.obj = obj
        self.reads: list[tuple[str, str | None]] = []
        self.cache_behind = False
        self.gone = False  # deleted: every read answers 404

    async def get_namespaced_custom_object(self, *_: Any) -> dict[str, Any]:
        self.reads.append(("quorum", None))
        return copy.deepcopy(self.obj)

    async def call_api(self, path: str, method: str, path_params: Any, query: Any, *_: Any, **__: Any) -> Any:
        assert (path.rsplit("/", 1)[-1], method) == ("{name}", "GET")
        (version,) = [v for k, v in query if k == "resourceVersion"]
        self.reads.append(("cached", version))
        if self.gone:
            return ErrorResponse(404, {"kind": "Status", "reason": "NotFound", "message": "not found"})
        if self.cache_behind:
            too_large = {"kind": "Status", "reason": "Timeout", "message": "Too large resource version"}
            return ErrorResponse(504, too_large)
        return RawResponse(copy.deepcopy(self.obj))

    async def patch_namespaced_custom_object_status(self, *args: Any, **_: Any) -> dict[str, Any]:
        self.obj = {**self.obj, "status": args[5]["status"]}
        self.obj["metadata"] = {**self.obj["metadata"], "resourceVersion": "9"}
        return copy.deepcopy(self.obj)


class ErrorResponse(RawResponse):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body)
        self.status, self.reason = status, "error"


def connection_object(name: str = "shop", uid: str = "uid-c", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "procon.dev/v1alpha1",
        "kind": "ProcessorConnection",
        "metadata": {
            "namespace": NAMESPACE,
            "name": name,
            "uid": uid,
            "generation": 1,
            "resourceVersion": "1",
        },
        "spec": {**SPEC, **spec},
    }


def run(test: Callable[[Kube, FakeCore], Awaitable[None]], obj: dict[str, Any] | None = None) -> FakeCore:
    core = FakeCore()

    async def main() -> None:
        async with client.ApiClient() as api:
            kube = Kube(api)
            kube._core = core  # type: ignore[assignment]
            kube._custom = kube._api = FakeCustom(obj or connection_object())  # type: ignore[assignment]
            await test(kube, core)

    asyncio.run(main())
    return core


def encoded(value: str) -> str:
    import base64

    return base64.b64encode(value.encode()).decode()


# --------------------------------------------------------------------------- credentials


def test_credentials_the_watch_delivered_are_served_without_a_request() -> None:
    async def test(kube: Kube, core: FakeCore) -> None:
        await kube.get_connection(NAMESPACE, "shop")  # the connection refers to shop-key
        body = core.put("shop-key", labels=CREDENTIALS_LABELS, data={"token": encoded(KEY_MATERIAL)})
        kube.credentials_delivered("ADDED", body)
        for _ in range(5):
            read = await kube.read_credentials(NAMESPACE, "shop-key")
            assert read is not None
            assert read.opted_in
            assert read.data["token"] == KEY_MATERIAL
            assert read.resource_version == body["metadata"]["resourceVersion"]
        assert core.calls == Counter()
        assert kube.has_seen_secret(NAMESPACE, "shop-key", body["metadata"]["resourceVersion"])

    run(test)


def test_credentials_not_delivered_yet_are_listed_once_then_served() -> None:
    async def test(kube: Kube, core: FakeCore) -> None:
        await kube.get_connection(NAMESPACE, "shop")
        core.put("shop-key", labels=CREDENTIALS_LABELS, data={"token": encoded(KEY_MATERIAL)})
        for _ in range(3):
            read = await kube.read_credentials(NAMESPACE, "shop-key")
            assert read is not None
            assert read.data["token"] == KEY_MATERIAL
        assert core.calls == Counter({"LIST": 1})

    run(test)


def test_a_change_delivered_is_what_the_next_read_sees() -> None:
    async def test(kube: Kube, core: FakeCore) -> None:
        await kube.get_connection(NAMESPACE, "shop")
        kube.credentials_delivered(
            None, core.put("shop-key", labels=CREDENTIALS_LABELS, data={"token": encoded("old")})
        )
        changed = core.put("shop-key", labels=CREDENTIALS_LABELS, data={"token": encoded("new")})
        kube.credentials_delivered("MODIFIED", changed)
        read = await kube.read_credentials(NAMESPACE, "shop-key")
        assert read is not None
        assert (read.data["token"], read.resource_version) == ("new", changed["metadata"]["resourceVersion"])
        assert core.calls == Counter()

    run(test)


def test_a_secret_unlabelled_or_deleted_is_read_again_and_not_used() -> None:
    """Removing the opt-in label reaches a label-selected watch as DELETED: from then on the Secret
    is read as before: listed (no data comes back), then its metadata only."""

    async def test(kube: Kube, core: FakeCore) -> None:
        await kube.get_connection(NAMESPACE, "shop")
        kube.credentials_delivered(
            "ADDED", core.put("shop-key", labels=CREDENTIALS_LABELS, data={"token": encoded(KEY_MATERIAL)})
        )
        unlabelled = core.put("shop-key", labels={}, data={"token": encoded(KEY_MATERIAL)})
        kube.credentials_delivered("DELETED", unlabelled)
        read = await kube.read_credentials(NAMESPACE, "shop-key")
        assert read is not None
        assert not read.opted_in
        assert not read.data
        assert core.calls == Counter({"LIST": 1, "GET": 1})
        del core.objects["shop-key"]
        assert await kube.read_credentials(NAMESPACE, "shop-key") is None

    run(test)


def test_an_event_without_the_opt_in_label_is_never_served() -> None:
    """The watch is label-selected on the API server; an object without the label is not kept all
    the same."""

    async def test(kube: Kube, core: FakeCore) -> None:
        await kube.get_connection(NAMESPACE, "shop")
        kube.credentials_delivered("ADDED", core.put("shop-key", labels={}, data={"token": encoded("x")}))
        read = await kube.read_credentials(NAMESPACE, "shop-key")
        assert read is not None
        assert not read.opted_in
        assert not read.data

    run(test)


def test_cached_credentials_go_with_the_last_connection_that_refers_to_them() -> None:
    async def test(kube: Kube, core: FakeCore) -> None:
        await kube.get_connection(NAMESPACE, "shop")
        kube.credentials_delivered(
            "ADDED", core.put("shop-key", labels=CREDENTIALS_LABELS, data={"token": encoded(KEY_MATERIAL)})
        )
        assert kube.state_entries()["cached_credentials"] == 1
        kube.forget(NAMESPACE, "shop")
        # The index of signing Secrets mirrors the cluster (the Secret outlives its connection
        # until the garbage collector removes it): its watch's DELETED event empties it.
        left = {k: v for k, v in kube.state_entries().items() if k != "indexed_signing_secrets"}
        assert not any(left.values()), left
        # An unreferenced Secret's events keep nothing.
        kube.credentials_delivered("MODIFIED", core.put("shop-key", labels=CREDENTIALS_LABELS, data={}))
        assert kube.state_entries()["cached_credentials"] == 0

    run(test)


def test_a_spec_naming_another_credentials_secret_drops_the_old_one() -> None:
    obj = connection_object()

    async def test(kube: Kube, core: FakeCore) -> None:
        await kube.get_connection(NAMESPACE, "shop")
        kube.credentials_delivered("ADDED", core.put("shop-key", labels=CREDENTIALS_LABELS, data={}))
        obj["spec"]["credentialsSecretRef"] = {"name": "other-key"}
        await kube.get_connection(NAMESPACE, "shop")
        assert kube.state_entries()["cached_credentials"] == 0

    run(test, obj)


def test_a_credentials_secret_found_absent_then_listed_by_a_watch_wakes_its_connection() -> None:
    """A connection waits for its credentials Secret; the Secret is created while the watch is
    re-listing (its connection broke or expired), so it arrives with no event type. A Secret no
    reconcile read is not news in a listing; one a reconcile found absent is."""
    import kopf

    from procon.k8s import handlers
    from procon.k8s.workqueue import Priority
    from procon.settings import OperatorSettings

    async def test(kube: Kube, core: FakeCore) -> None:
        await kube.get_connection(NAMESPACE, "shop")
        assert await kube.read_credentials(NAMESPACE, "shop-key") is None  # waiting for it
        assert not kube.secret_believed_present(NAMESPACE, "shop-key")
        runtime = handlers.Runtime(settings=OperatorSettings(), kube=kube, reconciler=None)  # type: ignore[arg-type]
        key = (NAMESPACE, "shop")
        runtime.queue.add_after(key, 300.0, Priority.DRIFT)  # its next scheduled pass
        runtime.names_secrets(NAMESPACE, "shop", frozenset({(NAMESPACE, "shop-key")}))
        runtime.names_secrets(NAMESPACE, "other", frozenset({(NAMESPACE, "other-key")}))
        body = core.put("shop-key", labels=CREDENTIALS_LABELS, data={"token": encoded(KEY_MATERIAL)})
        never_read = core.put("other-key", labels=CREDENTIALS_LABELS, data={"token": encoded("x")})

        for listed in (body, never_read):
            await handlers.secret_changed(
                type=None,  # type: ignore[arg-type]
                namespace=NAMESPACE,
                name=listed["metadata"]["name"],
                meta=listed["metadata"],
                body=kopf.Body(listed),
                memo=kopf.Memo(runtime=runtime),
            )

        assert key in runtime.changed, "queued as a change, not left for its next scheduled pass"
        assert (NAMESPACE, "other") not in runtime.changed

    run(test)


# --------------------------------------------------------------------------- signing Secret


def test_a_new_connection_reads_its_signing_secret_once() -> None:
    """A create's first pass: read (absent), record the pending create, publish: one GET."""

    async def test(kube: Kube, core: FakeCore) -> None:
        connection = await kube.get_connection(NAMESPACE, "shop")
        assert connection is not None
        assert await kube.read_published(connection) is None
        await kube.record_pending(connection, PendingCreate(key="k", params="p"))
        await kube.publish(connection, "we_1", "whsec_1")
        assert core.calls == Counter({"GET": 1, "POST": 1, "PATCH": 1})
        # Only the written version is used: the answers are read raw, not deserialized (which
        # cost the operator more CPU than the requests themselves).
        assert core.written_as_models == 0
        published = await kube.read_published(connection)
        assert published is not None
        assert (published.webhook_id, published.signing_secret, published.pending) == (
            "we_1",
            "whsec_1",
            None,
        )

    run(test)


def owned_by(connection: Connection) -> list[dict[str, Any]]:
    """The owner reference procon's signing Secret carries to its connection."""
    return [
        {
            "apiVersion": "procon.dev/v1alpha1",
            "kind": "ProcessorConnection",
            "name": connection.name,
            "uid": connection.uid,
            "controller": True,
        }
    ]


def _listed(kube: Kube, *names: str) -> None:
    """The watch of procon's signing Secrets has listed the namespace and found ``names``."""
    kube.signing_index.listing(NAMESPACE)
    for name in names:
        kube.signing_index.listed_one(NAMESPACE, (NAMESPACE, name))
    kube.signing_index.listed(NAMESPACE)


def test_a_signing_secret_the_watch_has_not_seen_is_created_without_a_read() -> None:
    """A new connection's first pass in a fleet: the watch's listing says the Secret is not
    there, so the pass records its pending create with a create, and reads nothing."""

    async def test(kube: Kube, core: FakeCore) -> None:
        connection = await kube.get_connection(NAMESPACE, "shop")
        assert connection is not None
        _listed(kube, "someone-elses-webhook")
        assert await kube.read_published(connection) is None
        await kube.record_pending(connection, PendingCreate(key="k", params="p"))
        await kube.publish(connection, "we_1", "whsec_1")
        assert core.calls == Counter({"POST": 1, "PATCH": 1})
        assert not kube.signing_index.known_absent((NAMESPACE, "shop-webhook"))
        published = await kube.read_published(connection)  # there now: read
        assert published is not None
        assert published.webhook_id == "we_1"

    run(test)


@pytest.mark.parametrize("whose", ["a pending create of an earlier process", "a Secret not procon's"])
def test_a_signing_secret_there_after_all_starts_the_pass_over_and_is_read(whose: str) -> None:
    """The watch had not delivered it (or cannot see it: it lacks procon's label). The create
    fails; the pass starts over (it may have decided on "nothing pending"), reads the Secret, and
    sees it as it is: the earlier create to replay, or a Secret it must not write."""

    async def test(kube: Kube, core: FakeCore) -> None:
        connection = await kube.get_connection(NAMESPACE, "shop")
        assert connection is not None
        if whose == "a Secret not procon's":
            core.put("shop-webhook", labels={}, data={"k": encoded("v")})
        else:
            core.put(
                "shop-webhook",
                labels={
                    "app.kubernetes.io/managed-by": "procon",
                    "procon.dev/connection": "shop",
                    "procon.dev/owner-uid": connection.uid,
                },
                data={"pendingCreate": encoded('{"key": "earlier", "params": "p"}')},
                ownerReferences=owned_by(connection),
            )
        _listed(kube)
        assert await kube.read_published(connection) is None
        before = copy.deepcopy(core.objects["shop-webhook"])
        with pytest.raises(StaleObject):
            await kube.record_pending(connection, PendingCreate(key="k", params="p"))
        assert core.objects["shop-webhook"] == before  # nothing overwritten
        if whose == "a Secret not procon's":
            with pytest.raises(SecretNotOwned):
                await kube.read_published(connection)
        else:
            published = await kube.read_published(connection)
            assert published is not None
            assert published.pending == PendingCreate(key="earlier", params="p")

    run(test)


def test_a_read_to_confirm_reads_a_signing_secret_the_watch_cannot_see() -> None:
    """Ours by its owner reference, but without procon's label (someone removed it): the watch
    of procon's Secrets lists it no more. A read that trusts the watch takes it for absent; one
    asked to confirm reads it."""

    async def test(kube: Kube, core: FakeCore) -> None:
        connection = await kube.get_connection(NAMESPACE, "shop")
        assert connection is not None
        core.put(
            "shop-webhook",
            labels={},
            data={"signingSecret": encoded("whsec_1"), "endpointId": encoded("we_1")},
            ownerReferences=owned_by(connection),
        )
        _listed(kube)
        assert await kube.read_published(connection) is None
        assert core.calls["GET"] == 0
        published = await kube.read_published(connection, confirm=True)
        assert published is not None
        assert (published.webhook_id, published.signing_secret) == ("we_1", "whsec_1")

    run(test)


def test_a_signing_secret_changed_since_it_was_read_is_read_and_checked_again() -> None:
    """The patch carries the version that was verified: a Secret replaced meanwhile by someone
    else's is refused exactly as a read would refuse it, and never written."""

    async def test(kube: Kube, core: FakeCore) -> None:
        connection = await kube.get_connection(NAMESPACE, "shop")
        assert connection is not None
        await kube.publish(connection, "we_1", "whsec_1")
        assert await kube.read_published(connection) is not None
        # Deleted and made again by someone else, under the same name.
        foreign = core.put("shop-webhook", labels={"app": "theirs"}, data={"x": encoded("theirs")})
        with pytest.raises(SecretNotOwned):
            await kube.publish(connection, "we_2", "whsec_2")
        assert core.objects["shop-webhook"]["data"] == foreign["data"]

    run(test)


def test_a_signing_secret_changed_since_by_someone_allowed_is_merged_into() -> None:
    async def test(kube: Kube, core: FakeCore) -> None:
        connection = await kube.get_connection(NAMESPACE, "shop")
        assert connection is not None
        await kube.publish(connection, "we_1", "whsec_1")
        core.objects["shop-webhook"]["data"]["note"] = encoded("added by a person")
        core.objects["shop-webhook"]["metadata"]["resourceVersion"] = "999"
        await kube.publish(connection, "we_2", "whsec_2")
        data = core.objects["shop-webhook"]["data"]
        assert data["note"] == encoded("added by a person")
        assert data["endpointId"] == encoded("we_2")

    run(test)


def test_a_signing_secret_created_meanwhile_by_someone_else_is_refused() -> None:
    async def test(kube: Kube, core: FakeCore) -> None:
        connection = await kube.get_connection(NAMESPACE, "shop")
        assert connection is not None
        assert await kube.read_published(connection) is None  # absent ...
        core.put("shop-webhook", labels={}, data={})  # ... then someone else's
        with pytest.raises(SecretNotOwned):
            await kube.publish(connection, "we_1", "whsec_1")

    run(test)


def test_a_signing_secret_left_behind_is_taken_over_after_a_read() -> None:
    async def test(kube: Kube, core: FakeCore) -> None:
        connection = await kube.get_connection(NAMESPACE, "shop")
        assert connection is not None
        core.put(
            "shop-webhook",
            labels={"app.kubernetes.io/managed-by": "procon", "procon.dev/connection": "shop"},
            annotations={"procon.dev/orphaned-from": "shop/shop (uid old)"},
            data={"endpointId": encoded("we_0")},
        )
        assert await kube.read_published(connection) is not None
        await kube.publish(connection, "we_1", "whsec_1")
        meta = core.objects["shop-webhook"]["metadata"]
        assert [r["uid"] for r in meta["ownerReferences"]] == [connection.uid]
        assert "procon.dev/orphaned-from" not in meta["annotations"]
        assert core.calls["GET"] == 2  # a takeover reads again: the Secret was not ours yet

    run(test)


def test_known_signing_state_goes_with_the_connection() -> None:
    async def test(kube: Kube, core: FakeCore) -> None:
        connection: Connection | None = await kube.get_connection(NAMESPACE, "shop")
        assert connection is not None
        await kube.publish(connection, "we_1", "whsec_1")
        assert kube.state_entries()["known_signing_secrets"] == 1
        kube.forget(NAMESPACE, "shop")
        # The index of signing Secrets mirrors the cluster (the Secret outlives its connection
        # until the garbage collector removes it): its watch's DELETED event empties it.
        left = {k: v for k, v in kube.state_entries().items() if k != "indexed_signing_secrets"}
        assert not any(left.values()), left

    run(test)


def test_a_pass_that_outlives_its_connections_forgetting_leaves_nothing_behind() -> None:
    """Found when deletion moved onto the work queue: a clean-up pass still reading and writing
    when the connection's DELETED event made the operator forget it left a seen version of its
    Secrets that nothing would ever drop."""

    async def test(kube: Kube, core: FakeCore) -> None:
        connection = await kube.get_connection(NAMESPACE, "shop")
        assert connection is not None
        core.put("shop-key", labels=CREDENTIALS_LABELS, data={"token": encoded(KEY_MATERIAL)})
        kube.forget(NAMESPACE, "shop")  # the DELETED event, while the pass runs
        assert await kube.read_credentials(NAMESPACE, "shop-key") is not None
        assert await kube.read_published(connection, confirm=True) is None
        await kube.publish(connection, "we_1", "whsec_1")
        left = {k: v for k, v in kube.state_entries().items() if k != "indexed_signing_secrets"}
        assert not any(left.values()), left

    run(test)


# --------------------------------------------------------------------------- the connection


def test_a_read_asks_for_the_newest_version_known_and_the_watch_cache_answers() -> None:
    """A quorum read of etcd costs the API server over twice a read from its watch cache; a read
    at least as new as every version this process saw is all a reconcile needs."""
    custom = FakeCustom(connection_object())

    async def test(kube: Kube, core: FakeCore) -> None:
        kube._custom = kube._api = custom  # type: ignore[assignment]
        connection = await kube.get_connection(NAMESPACE, "shop")  # nothing known yet
        kube.watched(NAMESPACE, "shop", "7")
        await kube.get_connection(NAMESPACE, "shop")
        assert connection is not None
        await kube.write_status(connection, {"observedGeneration": 1})  # answered at version 9
        kube.watched(NAMESPACE, "shop", "8")  # an older event, delivered late
        await kube.get_connection(NAMESPACE, "shop")
        await kube.get_connection(NAMESPACE, "shop", latest=True)  # after a conflict
        kube.forget(NAMESPACE, "shop")
        await kube.get_connection(NAMESPACE, "shop")

    run(test)
    assert custom.reads == [
        ("quorum", None),
        ("cached", "7"),
        ("cached", "9"),
        ("quorum", None),
        ("quorum", None),
    ]


def test_a_watch_cache_behind_the_version_asked_for_is_read_past() -> None:
    custom = FakeCustom(connection_object())
    custom.cache_behind = True

    async def test(kube: Kube, core: FakeCore) -> None:
        kube._custom = kube._api = custom  # type: ignore[assignment]
        kube.watched(NAMESPACE, "shop", "7")
        connection = await kube.get_connection(NAMESPACE, "shop")
        assert connection is not None
        assert connection.name == "shop"

    run(test)
    assert custom.reads == [("cached", "7"), ("quorum", None)]


def test_a_connection_the_watch_cache_answers_gone_is_gone_and_forgotten() -> None:
    custom = FakeCustom(connection_object())

    async def test(kube: Kube, core: FakeCore) -> None:
        kube._custom = kube._api = custom  # type: ignore[assignment]
        kube.watched(NAMESPACE, "shop", "7")
        assert await kube.get_connection(NAMESPACE, "shop") is not None
        custom.gone = True
        assert await kube.get_connection(NAMESPACE, "shop") is None
        left = {k: v for k, v in kube.state_entries().items() if k != "indexed_signing_secrets"}
        assert not any(left.values()), left

    run(test)
    assert custom.reads == [("cached", "7"), ("cached", "7")]


def test_a_write_answered_after_the_connection_was_forgotten_keeps_nothing() -> None:
    """The DELETED event can be handled while a pass's status write is on its way: the version
    its answer names would otherwise stay known for a connection nothing refers to."""

    async def test(kube: Kube, core: FakeCore) -> None:
        connection = await kube.get_connection(NAMESPACE, "shop")
        assert connection is not None
        kube.forget(NAMESPACE, "shop")
        await kube.write_status(connection, {"observedGeneration": 1})
        left = {k: v for k, v in kube.state_entries().items() if k != "indexed_signing_secrets"}
        assert not any(left.values()), left

    run(test)


def test_after_a_cache_that_fell_short_the_version_etcd_answered_is_the_bound() -> None:
    """A version that may never come (etcd restored from a backup starts its revisions over) is
    not asked for again: every read would wait the API server's seconds for nothing."""
    custom = FakeCustom(connection_object())  # etcd has it at version 1
    custom.cache_behind = True

    async def test(kube: Kube, core: FakeCore) -> None:
        kube._custom = kube._api = custom  # type: ignore[assignment]
        kube.watched(NAMESPACE, "shop", "7")
        await kube.get_connection(NAMESPACE, "shop")
        custom.cache_behind = False
        await kube.get_connection(NAMESPACE, "shop")

    run(test)
    assert custom.reads == [("cached", "7"), ("quorum", None), ("cached", "1")]


def test_the_event_of_a_write_delivered_after_a_later_write_is_no_news() -> None:
    """The watch delivered the write-ahead create's event after the publish's answer: that older
    version is not a change for the connection to be reconciled for again (it made a second pass
    that acted on an account listing the test had just changed)."""

    async def test(kube: Kube, core: FakeCore) -> None:
        connection = await kube.get_connection(NAMESPACE, "shop")
        assert connection is not None
        assert await kube.read_published(connection) is None
        await kube.record_pending(connection, PendingCreate(key="k", params="p"))
        created = core.objects["shop-webhook"]["metadata"]["resourceVersion"]
        await kube.publish(connection, "we_1", "whsec_1")
        published = core.objects["shop-webhook"]["metadata"]["resourceVersion"]
        assert int(published) > int(created)
        assert kube.has_seen_secret(NAMESPACE, "shop-webhook", created)
        assert kube.has_seen_secret(NAMESPACE, "shop-webhook", published)
        assert not kube.has_seen_secret(NAMESPACE, "shop-webhook", str(int(published) + 1))

    run(test)
