"""The Kubernetes side of the reconciler: :class:`procon.reconcile.ports.KubePort` over the real API.

kopf watches and dispatches; the reads and writes a reconcile makes go
through ``kubernetes_asyncio`` here, so they are explicit, typed at the edge,
and each one is a single request.

Signing-secret Secrets are written with an owner reference to their
connection (so the garbage collector removes them with it) and labels that
say who manages them. A Secret with that name that procon did not create is
never overwritten. When a connection goes and leaves its webhook at the
processor (``deletionPolicy: Orphan``, or paused), its Secret stays too: the
owner reference is removed and the Secret marked as orphaned, so a later
connection with the same name may take it over.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import socket
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import aiohttp
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from procon.api.v1alpha1 import FINALIZER, GROUP, KIND, PLURAL, VERSION, ProcessorConnection
from procon.http_proxy import proxy_from_environment
from procon.k8s.credentials_cache import MAX_AGE, CredentialsCache
from procon.k8s.liveness import UnwatchedChanges
from procon.k8s.signing_index import SigningSecretIndex
from procon.reconcile.credentials_access import (
    CREDENTIALS_LABEL,
    CREDENTIALS_LABEL_VALUE,
    CREDENTIALS_SELECTOR,
)
from procon.reconcile.ports import (
    Connection,
    CredentialsSecret,
    EventType,
    PendingCreate,
    PublishedSecret,
    SecretNotOwned,
    StaleObject,
)

# Annotation changes that must trigger a reconcile although they leave the generation alone.
TRIGGER_ANNOTATIONS = ("procon.dev/rotate-signing-secret", "procon.dev/paused")
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "procon"
CONNECTION_LABEL = "procon.dev/connection"
OWNER_UID_LABEL = "procon.dev/owner-uid"
# On a signing-secret Secret its connection left behind: "<namespace>/<name> (uid <uid>)".
ORPHANED_FROM_ANNOTATION = "procon.dev/orphaned-from"
WEBHOOK_ID_KEY = "endpointId"
# The write-ahead record of a create not yet published (see PendingCreate): in the Secret that
# holds the signing secret, so it is exactly as readable as what it could be used to obtain.
PENDING_CREATE_KEY = "pendingCreate"
# The generated client picks a patch type from the body; procon always means
# a JSON merge patch. (`_content_type` is accepted at run time but missing
# from the client's type hints.)
AS_MERGE_PATCH: dict[str, Any] = {"_content_type": "application/merge-patch+json"}
# Ask the API server for an object's metadata only, never its data; the raw
# response is read by the caller (the client's models have no such type).
METADATA_ONLY = {"Accept": "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"}
AS_RAW_METADATA: dict[str, Any] = {"_headers": METADATA_ONLY, "_preload_content": False}


async def api_client() -> client.ApiClient:
    """An API client from the in-cluster ServiceAccount, or from KUBECONFIG outside a cluster.

    Its HTTP session does not read the environment on each request. kubernetes_asyncio builds it
    with aiohttp's ``trust_env``, which makes every request look up ~/.netrc and the proxy for
    its URL, each in a worker thread: two thread hops per request, a large share of the
    operator's CPU at fleet size. Netrc credentials mean nothing to the Kubernetes API (a token
    or a client certificate authenticates), and the proxy is decided here, once, from the
    environment (:func:`procon.http_proxy.proxy_from_environment`), unless the kubeconfig names
    one itself (``proxy-url``).
    """
    from kubernetes_asyncio import config

    configuration = client.Configuration()
    if os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    else:
        await config.load_kube_config(client_configuration=configuration)
    if not configuration.proxy and configuration.host:
        configuration.proxy = proxy_from_environment(configuration.host)
    api = client.ApiClient(configuration)
    distrust_environment(api.rest_client.pool_manager)
    return api


def distrust_environment(session: aiohttp.ClientSession) -> None:
    """Turn ``trust_env`` off on a session kubernetes_asyncio built with it on.

    aiohttp offers no public setter, so this sets the attribute behind the ``trust_env``
    property, and checks through the property that it took: if a future aiohttp renames it,
    the operator stops at start-up instead of quietly paying for the lookups again.
    """
    session._trust_env = False
    if session.trust_env:
        raise RuntimeError(
            "cannot turn off trust_env on the Kubernetes API client's aiohttp session "
            f"(aiohttp {aiohttp.__version__}): its per-request netrc and proxy lookups would stay on"
        )


def raise_for_status(response: Any, body: bytes | None = None) -> None:
    """A raw (``_preload_content=False``) response is not checked by the client: check it here.
    With the answer's ``body``, the error carries it as the client's own does (the API server's
    message, naming the permission or field at fault)."""
    if not 200 <= response.status <= 299:
        error = ApiException(status=response.status, reason=str(response.reason))
        if body is not None:
            # Text, as the client stores it at run time (its type hints say bytes).
            error.body = body.decode("utf-8", errors="replace")  # type: ignore[assignment]
        raise error


async def raw_json(response: Any) -> Any:
    """The JSON body of a raw response, after :func:`raise_for_status`."""
    async with response:
        body = await response.read()
    raise_for_status(response, body)
    return json.loads(body)


async def discard(response: Any) -> None:
    """Read a raw response to its end (so its connection goes back to the pool) and check its
    status; for writes whose answer is not used, which the client would otherwise deserialize."""
    async with response:
        body = await response.read()
    raise_for_status(response, body)


def _decode(data: Mapping[str, str] | None) -> dict[str, str]:
    return {k: base64.b64decode(v).decode("utf-8", errors="replace") for k, v in (data or {}).items()}


def _encode(data: Mapping[str, str]) -> dict[str, str]:
    return {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}


def _encode_patch(data: Mapping[str, str | None]) -> dict[str, str | None]:
    """For a merge patch: None removes the key."""
    return {k: (base64.b64encode(v.encode()).decode() if v is not None else None) for k, v in data.items()}


def pending_to_json(pending: PendingCreate) -> str:
    return json.dumps(
        {
            "key": pending.key,
            "params": pending.params,
            "replaces": pending.replaces,
            "rotation": pending.rotation,
        },
        separators=(",", ":"),
    )


def pending_from_json(raw: str | None) -> PendingCreate | None:
    """The record, or None when absent or not one procon wrote (then it is ignored, not trusted)."""
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    key, params = data.get("key"), data.get("params")
    replaces, rotation = data.get("replaces"), data.get("rotation")
    if not (isinstance(key, str) and key and isinstance(params, str)):
        return None
    return PendingCreate(
        key=key,
        params=params,
        replaces=replaces if isinstance(replaces, str) and replaces else None,
        rotation=rotation if isinstance(rotation, str) and rotation else None,
    )


def _revision(resource_version: str) -> int:
    """A resourceVersion as the etcd revision it is on every API server procon runs against; 0 for
    one that is not a plain number (then never used as a bound)."""
    return int(resource_version) if resource_version.isascii() and resource_version.isdigit() else 0


def connection_from_object(obj: Mapping[str, Any]) -> Connection:
    meta = obj.get("metadata") or {}
    return Connection(
        model=ProcessorConnection.model_validate(obj),
        namespace=meta["namespace"],
        name=meta["name"],
        uid=meta["uid"],
        generation=int(meta.get("generation") or 0),
        resource_version=str(meta.get("resourceVersion") or ""),
        annotations=dict(meta.get("annotations") or {}),
        status=dict(obj.get("status") or {}),
        deleting=bool(meta.get("deletionTimestamp")),
        finalizers=tuple(str(f) for f in meta.get("finalizers") or ()),
    )


def _opted_in(metadata: Mapping[str, Any], data: Mapping[str, str] | None) -> CredentialsSecret:
    """A credentials Secret that opted in, as the reconciler sees it."""
    return CredentialsSecret(
        opted_in=True,
        annotations=dict(metadata.get("annotations") or {}),
        data=_decode(data),
        uid=str(metadata.get("uid") or ""),
        resource_version=str(metadata.get("resourceVersion") or ""),
    )


def _other_owner_references(secret: client.V1Secret) -> list[dict[str, Any]]:
    """The Secret's owner references other than a procon connection's, as a patch carries them."""
    return [
        {
            "apiVersion": ref.api_version,
            "kind": ref.kind,
            "name": ref.name,
            "uid": ref.uid,
            **({"controller": ref.controller} if ref.controller is not None else {}),
            **(
                {"blockOwnerDeletion": ref.block_owner_deletion}
                if ref.block_owner_deletion is not None
                else {}
            ),
        }
        for ref in secret.metadata.owner_references or []
        if not (ref.kind == KIND and ref.api_version == f"{GROUP}/{VERSION}")
    ]


class Kube:
    """KubePort over kubernetes_asyncio."""

    def __init__(
        self, api: client.ApiClient, *, component: str = "procon", credentials_max_age: float = MAX_AGE
    ) -> None:
        self._api = api  # for requests the generated client has no method for
        self._core = client.CoreV1Api(api)
        self.core = self._core  # for the watch of procon's own Secrets
        self._custom = client.CustomObjectsApi(api)
        self._component = component
        self._instance = socket.gethostname()
        # What the last reads saw, so a watch event for a version a reconcile
        # has already read does not trigger another reconcile.
        self._seen_generation: dict[tuple[str, str], tuple[int, tuple[str | None, ...]]] = {}
        # Per Secret a reconcile read (or wrote): the resourceVersion it found, or None when it
        # found the Secret absent (a connection waiting for its Secret: its creation is news).
        self._seen_secret_version: dict[tuple[str, str], str | None] = {}
        # The Secrets each connection referenced when last read, and per Secret how many
        # connections do: what is kept about a Secret goes once no known connection refers to it.
        self._secret_refs: dict[tuple[str, str], frozenset[str]] = {}
        self._secret_ref_counts: dict[tuple[str, str], int] = {}
        # The credentials Secrets as the watch delivered them (see procon.k8s.credentials_cache).
        self._credentials = CredentialsCache(self.references, max_age=credentials_max_age)
        # Per signing Secret, what this process last found or made it: the resourceVersion at
        # which it was verified owned by (the UID of) its connection, or None when found absent.
        # A write goes on from there without reading it again: a patch carries that version as a
        # precondition and a create fails on a Secret that exists, so knowledge gone stale costs
        # a request (then the Secret is read and checked as ever), never a write to a Secret
        # that was not verified.
        self._signing: dict[tuple[str, str], tuple[str, str | None]] = {}
        # Which signing Secrets exist, as their watch says (kept up by procon.k8s.secret_watch):
        # a Secret it knows absent is not read before it is created. A create that finds one
        # all the same starts the pass over (see _write_signing_secret).
        self.signing_index = SigningSecretIndex()
        self._absent_by_index: set[tuple[str, str]] = set()
        # For liveness: reads that found a version the watch has not delivered.
        self.unwatched = UnwatchedChanges()
        # Per connection, the newest resourceVersion this process knows of (delivered by the watch,
        # read, or answered to a write): a read asks for "not older than" it, which the API server
        # answers from its watch cache instead of a quorum read of etcd (see get_connection).
        self._newest_version: dict[tuple[str, str], int] = {}

    def watched(self, namespace: str, name: str, resource_version: str) -> None:
        """The watch delivered this version of a connection."""
        self.unwatched.delivered((namespace, name), resource_version)
        self._know_version((namespace, name), resource_version)

    def _know_version(self, key: tuple[str, str], resource_version: str) -> None:
        # resourceVersions are opaque to clients, but every API server orders them as etcd
        # revisions; one that is not a number is simply not used for a cached read.
        if _revision(resource_version) > self._newest_version.get(key, 0):
            self._newest_version[key] = _revision(resource_version)

    def _know_written_version(self, key: tuple[str, str], resource_version: str) -> None:
        """The version a write of a connection answered with, while the connection is known: an
        answer handled after its DELETED event made the operator forget it keeps nothing."""
        if key in self._secret_refs:
            self._know_version(key, resource_version)

    def has_seen_generation(
        self, namespace: str, name: str, generation: int, annotations: Mapping[str, str]
    ) -> bool:
        """Whether a reconcile read this generation with these values of the trigger annotations."""
        triggers = tuple(annotations.get(a) for a in TRIGGER_ANNOTATIONS)
        return self._seen_generation.get((namespace, name)) == (generation, triggers)

    def has_seen_secret(self, namespace: str, name: str, resource_version: str) -> bool:
        """Whether a read or write of this process found this version of the Secret, or a later one.

        A later one counts: the watch may deliver the event of a write (the write-ahead create)
        after this process has written again (the publish), and that event is no news.
        """
        seen = self._seen_secret_version.get((namespace, name))
        if seen is None:
            return False
        return seen == resource_version or 0 < _revision(resource_version) <= _revision(seen)

    def secret_believed_present(self, namespace: str, name: str) -> bool:
        """Whether the last read or write of this Secret found it (so its deletion is news)."""
        return self._seen_secret_version.get((namespace, name)) is not None

    def has_read_secret(self, namespace: str, name: str) -> bool:
        """Whether a reconcile of this process read (or wrote) this Secret, found or not."""
        return (namespace, name) in self._seen_secret_version

    def forget(self, namespace: str, name: str) -> None:
        """The connection is gone: drop what was kept about it, and about Secrets only it referenced."""
        key = (namespace, name)
        self._seen_generation.pop(key, None)
        self._newest_version.pop(key, None)
        self.unwatched.forget(key)
        self._refer(namespace, self._secret_refs.pop(key, frozenset()), frozenset())

    def references(self, secret: tuple[str, str]) -> bool:
        """Whether a connection known to this process references the Secret (namespace, name)."""
        return secret in self._secret_ref_counts

    def _refer(self, namespace: str, before: frozenset[str], after: frozenset[str]) -> None:
        """A connection referred to the Secrets ``before`` and now to ``after``: count them, and
        forget what was kept about those no known connection refers to any more."""
        for secret in after - before:
            key = (namespace, secret)
            self._secret_ref_counts[key] = self._secret_ref_counts.get(key, 0) + 1
        for secret in before - after:
            key = (namespace, secret)
            left = self._secret_ref_counts.get(key, 0) - 1
            if left > 0:
                self._secret_ref_counts[key] = left
                continue
            self._secret_ref_counts.pop(key, None)
            self._seen_secret_version.pop(key, None)
            self._credentials.drop(key)
            self._signing.pop(key, None)
            self._absent_by_index.discard(key)

    def state_entries(self) -> dict[str, int]:
        """Sizes of the per-connection stores (for the operator's own metrics)."""
        return {
            "seen_generations": len(self._seen_generation),
            "newest_versions": len(self._newest_version),
            "seen_secrets": len(self._seen_secret_version),
            "secret_references": len(self._secret_refs),
            "referenced_secrets": len(self._secret_ref_counts),
            "known_signing_secrets": len(self._signing),
            "indexed_signing_secrets": len(self.signing_index),
            "signing_secrets_absent_by_index": len(self._absent_by_index),
            **self._credentials.state_entries(),
            **self.unwatched.state_entries(),
        }

    def credentials_delivered(self, type_: str | None, body: Mapping[str, Any]) -> None:
        """The watch of credentials Secrets delivered this event (``type_`` None: a listing's)."""
        metadata = body.get("metadata") or {}
        namespace, name = metadata.get("namespace"), metadata.get("name")
        if not (namespace and name):
            return
        labels = metadata.get("labels") or {}
        # The watch is label-selected on the API server; checked again all the same, so that
        # only an opted-in Secret is ever served from the cache.
        opted_in = type_ != "DELETED" and labels.get(CREDENTIALS_LABEL) == CREDENTIALS_LABEL_VALUE
        secret = _opted_in(metadata, body.get("data")) if opted_in else None
        self._credentials.delivered((str(namespace), str(name)), secret)

    async def cluster_uid(self) -> str:
        """The UID of the kube-system namespace: created with the cluster, unique to it, never changed."""
        namespace = await self._core.read_namespace("kube-system")
        return str(namespace.metadata.uid)

    async def get_connection(self, namespace: str, name: str, *, latest: bool = False) -> Connection | None:
        """The connection, at least as new as any version of it this process has seen.

        That bound is all a reconcile needs: a change made since reaches the watch, which queues
        another pass. So the read names the newest version known, and the API server answers from
        its watch cache: a quorum read of etcd cost it over twice as much CPU per read
        (docs/design/work-queue.md, "Reads of Kubernetes per reconcile"). ``latest`` asks for a
        quorum read: after a conflict, when the object is known to have changed in ways the watch
        may not have delivered yet.
        """
        key = (namespace, name)
        known = None if latest else self._newest_version.get(key)
        try:
            obj, cache_behind = await self._read_connection(namespace, name, known)
        except ApiException as error:
            if error.status == 404:
                self.forget(namespace, name)
                return None
            raise
        connection = connection_from_object(obj)
        if cache_behind:
            # The version asked for may never come (etcd restored from a backup starts over):
            # the one etcd answered with is the bound from now on, lower or not.
            self._newest_version.pop(key, None)
        self._know_version(key, connection.resource_version)
        self.unwatched.read((namespace, name), connection.resource_version)
        self._seen_generation[(namespace, name)] = (
            connection.generation,
            tuple(connection.annotations.get(a) for a in TRIGGER_ANNOTATIONS),
        )
        spec = connection.model.spec
        refs = frozenset((spec.credentials_secret_ref.name, spec.webhook.signing_secret_ref.name))
        before = self._secret_refs.get((namespace, name), frozenset())
        self._secret_refs[(namespace, name)] = refs
        if before != refs:  # first read, or the spec names other Secrets now
            self._refer(namespace, before, refs)
        return connection

    async def _read_connection(
        self, namespace: str, name: str, not_older_than: int | None
    ) -> tuple[Any, bool]:
        """The object, and whether the watch cache fell short of ``not_older_than`` (etcd answered)."""
        if not_older_than is None:
            return await self._quorum_read(namespace, name), False
        try:
            # The generated client has no resourceVersion parameter for this read.
            response = await self._api.call_api(
                "/apis/{group}/{version}/namespaces/{namespace}/{plural}/{name}",
                "GET",
                {"group": GROUP, "version": VERSION, "namespace": namespace, "plural": PLURAL, "name": name},
                [("resourceVersion", str(not_older_than))],
                {"Accept": "application/json"},
                auth_settings=["BearerToken"],
                _preload_content=False,
            )
            return await raw_json(response), False
        except ApiException as error:
            # 504: the watch cache did not reach that version in time (the API server waits a few
            # seconds); etcd answers instead.
            if error.status != 504:
                raise
        return await self._quorum_read(namespace, name), True

    async def _quorum_read(self, namespace: str, name: str) -> Any:
        return await self._custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)

    async def read_credentials(self, namespace: str, name: str) -> CredentialsSecret | None:
        """The credentials Secret: as the watch delivered it, else read through the opt-in label selector.

        The API server filters: a Secret without ``procon.dev/credentials:
        "true"`` comes back as an empty list, its data never sent. Only then is
        its metadata read (no data), to tell a missing Secret from one that
        did not opt in.
        """
        key = (namespace, name)
        secret = self._credentials.get(key)
        if secret is None:
            secret = await self._credentials.read(key, lambda: self._list_opted_in(namespace, name))
        if secret is not None:
            self._note_secret(key, secret.resource_version)
            return secret
        meta = await self._read_metadata(namespace, name)
        if meta is None:
            self._note_secret((namespace, name), None)  # read, and found absent
            return None
        self._note_secret((namespace, name), str(meta.get("resourceVersion")))
        return CredentialsSecret(opted_in=False, annotations=dict(meta.get("annotations") or {}))

    async def _list_opted_in(self, namespace: str, name: str) -> CredentialsSecret | None:
        """The Secret if it exists and opted in: a LIST selected by its name and the opt-in label."""
        listed = await self._core.list_namespaced_secret(
            namespace, field_selector=f"metadata.name={name}", label_selector=CREDENTIALS_SELECTOR
        )
        if not listed.items:
            return None
        meta = listed.items[0].metadata
        return _opted_in(
            {
                "annotations": meta.annotations,
                "uid": meta.uid,
                "resourceVersion": meta.resource_version,
            },
            listed.items[0].data,
        )

    async def _read_metadata(self, namespace: str, name: str) -> dict[str, Any] | None:
        """A Secret's metadata only (PartialObjectMetadata), or None when it does not exist."""
        try:
            body = await raw_json(await self._core.read_namespaced_secret(name, namespace, **AS_RAW_METADATA))
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return dict(body.get("metadata") or {})

    def _note_secret(self, key: tuple[str, str], version: str | None) -> None:
        """Remember the version of a Secret a read or write found (None: absent), while a known
        connection refers to it: a pass still running when its connection is forgotten (its
        DELETED event came meanwhile) must not leave an entry nothing would ever drop."""
        if key in self._secret_ref_counts:
            self._seen_secret_version[key] = version

    def _saw_secret(self, secret: client.V1Secret) -> None:
        meta = secret.metadata
        self._note_secret((meta.namespace, meta.name), meta.resource_version)

    async def _written_secret(self, response: Any) -> str:
        """The resourceVersion of the Secret a write answered with (raw: only the version is used,
        and deserializing the whole Secret into the client's models cost the operator more CPU than
        the request); remembered as seen."""
        meta = (await raw_json(response))["metadata"]
        version = str(meta["resourceVersion"])
        self._note_secret((meta["namespace"], meta["name"]), version)
        return version

    async def _patch_secret(self, name: str, namespace: str, patch: Mapping[str, Any]) -> str:
        """Merge-patch a Secret; its new resourceVersion."""
        return await self._written_secret(
            await self._core.patch_namespaced_secret(
                name, namespace, patch, **AS_MERGE_PATCH, _preload_content=False
            )
        )

    async def _read_owned(self, connection: Connection) -> client.V1Secret | None:
        name = connection.model.spec.webhook.signing_secret_ref.name
        key = (connection.namespace, name)
        self._signing.pop(key, None)
        self._absent_by_index.discard(key)
        try:
            secret = await self._core.read_namespaced_secret(name, connection.namespace)
        except ApiException as error:
            if error.status == 404:
                self._note_secret(key, None)  # read, and found absent
                self._know_signing(connection, None)
                return None
            raise
        self._saw_secret(secret)
        labels = secret.metadata.labels or {}
        owners = {ref.uid for ref in secret.metadata.owner_references or []}
        left_behind = (
            ORPHANED_FROM_ANNOTATION in (secret.metadata.annotations or {})
            and labels.get(MANAGED_BY_LABEL) == MANAGED_BY
            and labels.get(CONNECTION_LABEL) == connection.name
        )
        if labels.get(OWNER_UID_LABEL) != connection.uid and connection.uid not in owners and not left_behind:
            raise SecretNotOwned(name)
        if connection.uid in owners:  # a Secret still to be taken over is read again when written
            self._know_signing(connection, secret.metadata.resource_version)
        return secret

    def _know_signing(self, connection: Connection, resource_version: str | None) -> None:
        """Remember the connection's signing Secret as verified ours at this version (None: absent)."""
        key = (connection.namespace, connection.model.spec.webhook.signing_secret_ref.name)
        if resource_version is not None:  # read or written: no longer believed absent on the watch's word
            self._absent_by_index.discard(key)
            self.signing_index.present(key)
        if self.references(key):  # kept no longer than a connection refers to it
            self._signing[key] = (connection.uid, resource_version)

    def _owner_reference(self, connection: Connection) -> dict[str, Any]:
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": KIND,
            "name": connection.name,
            "uid": connection.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }

    async def read_published(
        self, connection: Connection, *, confirm: bool = False
    ) -> PublishedSecret | None:
        secret_key = (connection.namespace, connection.model.spec.webhook.signing_secret_ref.name)
        if not confirm and self.references(secret_key) and self.signing_index.known_absent(secret_key):
            # A new connection's Secret, as a rule: nothing to read. What this process writes
            # next is a create, which fails if the Secret exists all the same.
            self._note_secret(secret_key, None)
            self._know_signing(connection, None)
            self._absent_by_index.add(secret_key)
            return None
        secret = await self._read_owned(connection)
        if secret is None:
            return None
        data = _decode(secret.data)
        key = connection.model.spec.webhook.signing_secret_ref.key
        return PublishedSecret(
            webhook_id=data.get(WEBHOOK_ID_KEY),
            signing_secret=data.get(key),
            pending=pending_from_json(data.get(PENDING_CREATE_KEY)),
        )

    async def publish(self, connection: Connection, webhook_id: str, signing_secret: str) -> None:
        ref = connection.model.spec.webhook.signing_secret_ref
        await self._write_signing_secret(
            connection, {ref.key: signing_secret, WEBHOOK_ID_KEY: webhook_id, PENDING_CREATE_KEY: None}
        )

    async def record_pending(self, connection: Connection, pending: PendingCreate | None) -> None:
        value = pending_to_json(pending) if pending is not None else None
        await self._write_signing_secret(connection, {PENDING_CREATE_KEY: value})

    async def _write_signing_secret(self, connection: Connection, values: Mapping[str, str | None]) -> None:
        """Create the signing-secret Secret with ``values``, or merge them into it (None removes a key)."""
        ref = connection.model.spec.webhook.signing_secret_ref
        metadata = {
            "name": ref.name,
            "labels": {
                MANAGED_BY_LABEL: MANAGED_BY,
                CONNECTION_LABEL: connection.name,
                OWNER_UID_LABEL: connection.uid,
            },
            "ownerReferences": [self._owner_reference(connection)],
        }
        key = (connection.namespace, ref.name)
        known = self._signing.get(key)
        removing_only = all(v is None for v in values.values())
        existing: client.V1Secret | None
        if known is None or known[0] != connection.uid or (known[1] is None and removing_only):
            existing = await self._read_owned(connection)
        elif known[1] is None:
            existing = None  # found absent just now: the create below fails if it exists since
        else:
            # Verified ours at that version: the patch applies to that very version only.
            conditional = {
                "metadata": {"labels": metadata["labels"], "resourceVersion": known[1]},
                "data": _encode_patch(values),
            }
            try:
                version = await self._patch_secret(ref.name, connection.namespace, conditional)
            except ApiException as error:
                if error.status not in (404, 409):
                    raise
                existing = await self._read_owned(connection)  # changed or gone since: look again
            else:
                self._know_signing(connection, version)
                return
        if existing is None and removing_only:
            return  # nothing to remove from a Secret that does not exist
        if existing is None:
            body: Any = {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "Opaque",
                "metadata": metadata,
                "data": _encode({k: v for k, v in values.items() if v is not None}),
            }
            try:
                version = await self._written_secret(
                    await self._core.create_namespaced_secret(
                        connection.namespace, body, _preload_content=False
                    )
                )
                self._know_signing(connection, version)
                return
            except ApiException as error:
                if error.status != 409:
                    raise
                if key in self._absent_by_index:
                    # Believed absent on the watch's word, not read: what the pass decided may
                    # rest on that (a create's write-ahead record it never saw). It starts over,
                    # and reads the Secret this time.
                    self._absent_by_index.discard(key)
                    self.signing_index.present(key)
                    raise StaleObject(connection.name) from None
                existing = await self._read_owned(connection)  # created meanwhile: ours, or refuse
        # Merge: other keys someone added to the Secret are kept.
        patch: dict[str, Any] = {"metadata": {"labels": metadata["labels"]}, "data": _encode_patch(values)}
        owners = {r.uid for r in (existing.metadata.owner_references if existing else None) or []}
        if existing is not None and connection.uid not in owners:
            # Left behind by an earlier connection of this name: this one takes it over.
            patch["metadata"]["ownerReferences"] = [
                *_other_owner_references(existing),
                self._owner_reference(connection),
            ]
            patch["metadata"]["annotations"] = {ORPHANED_FROM_ANNOTATION: None}
        self._know_signing(connection, await self._patch_secret(ref.name, connection.namespace, patch))

    async def release_published(self, connection: Connection) -> bool:
        secret = await self._read_owned(connection)
        # Ours no more once released: a later write reads it again (and takes it over).
        self._signing.pop((connection.namespace, connection.model.spec.webhook.signing_secret_ref.name), None)
        if secret is None:
            return False
        origin = f"{connection.namespace}/{connection.name} (uid {connection.uid})"
        patch = {
            "metadata": {
                "ownerReferences": _other_owner_references(secret),
                "annotations": {ORPHANED_FROM_ANNOTATION: origin},
                # Conditional: a write that raced this read is not undone.
                "resourceVersion": secret.metadata.resource_version,
            }
        }
        await self._patch_secret(secret.metadata.name, connection.namespace, patch)
        return True

    async def set_annotations(
        self, connection: Connection, annotations: Mapping[str, str | None]
    ) -> Connection:
        """Patch annotations, conditionally on the object being the one the decision was made on.

        The patch carries the resourceVersion, so it fails if anything changed
        since the read. A change that left the generation alone (procon adding
        its finalizer, a status write, a label) does not invalidate the
        decision, so the patch is retried on the fresh version; a new
        generation raises :class:`StaleObject` and the reconcile starts over.
        """
        for _ in range(5):
            if all(connection.annotations.get(k) == v for k, v in annotations.items()):
                return connection
            patch = {
                "metadata": {"annotations": dict(annotations), "resourceVersion": connection.resource_version}
            }
            try:
                obj = await self._patch_connection(connection, patch)
            except ApiException as error:
                if error.status != 409:
                    raise
                fresh = await self.get_connection(connection.namespace, connection.name, latest=True)
                if fresh is None or fresh.generation != connection.generation or fresh.deleting:
                    raise StaleObject(connection.name) from None
                connection = fresh
                continue
            return self._answered(obj)
        raise StaleObject(connection.name)

    async def hold(self, connection: Connection) -> Connection:
        held = await self._set_finalizer(connection, held=True)
        if held is None:
            raise StaleObject(connection.name)
        return held

    async def release(self, connection: Connection) -> None:
        await self._set_finalizer(connection, held=False)

    async def _set_finalizer(self, connection: Connection, *, held: bool) -> Connection | None:
        """Add or remove procon's finalizer, conditionally on the object the decision was made on;
        the connection as written, or None when it is gone.

        A merge patch replaces the whole list, so it carries the resourceVersion: another
        controller's finalizer added or removed meanwhile is never lost. On a conflict the list
        is read again; adding gives way (:class:`StaleObject`) to a new generation or a
        deletion begun meanwhile, which the reconcile decides on afresh.
        """
        for _ in range(5):
            if connection.held == held:
                return connection
            others = [f for f in connection.finalizers if f != FINALIZER]
            patch = {
                "metadata": {
                    "finalizers": [*others, FINALIZER] if held else others,
                    "resourceVersion": connection.resource_version,
                }
            }
            try:
                # Raw: only the metadata of the answer is used; the rest is what was read.
                answer = await self._patch_connection(connection, patch, _preload_content=False)
                meta = dict((await raw_json(answer)).get("metadata") or {})
            except ApiException as error:
                if error.status == 404:
                    return None
                if error.status != 409:
                    raise
                fresh = await self.get_connection(connection.namespace, connection.name, latest=True)
                if fresh is None or (not held and fresh.uid != connection.uid):
                    return None  # gone (a new object of that name is another connection's business)
                if fresh.uid != connection.uid or fresh.generation != connection.generation:
                    # Decided on another spec (a policy, a pause): the next pass decides again.
                    raise StaleObject(connection.name) from None
                if held and fresh.deleting:
                    raise StaleObject(connection.name) from None
                connection = fresh
                continue
            finalizers = tuple(str(f) for f in meta.get("finalizers") or ())
            if not held and not finalizers:
                return None  # nothing holds it any more: the API server removes it
            version = str(meta.get("resourceVersion") or "")
            self._know_written_version((connection.namespace, connection.name), version)
            # The patch was conditional on the version read: all else is as read.
            return replace(connection, resource_version=version, finalizers=finalizers)
        raise StaleObject(connection.name)

    async def _patch_connection(
        self, connection: Connection, patch: Mapping[str, Any], **options: Any
    ) -> Any:
        """Merge-patch the connection's metadata (each patch carries the version it was made on)."""
        return await self._custom.patch_namespaced_custom_object(
            GROUP, VERSION, connection.namespace, PLURAL, connection.name, patch, **AS_MERGE_PATCH, **options
        )

    def _answered(self, obj: Mapping[str, Any]) -> Connection:
        """The connection a write answered with; its version is the newest known."""
        connection = connection_from_object(obj)
        self._know_written_version((connection.namespace, connection.name), connection.resource_version)
        return connection

    async def write_status(self, connection: Connection, status: Mapping[str, Any]) -> Connection:
        try:
            obj = await self._custom.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                connection.namespace,
                PLURAL,
                connection.name,
                {"status": dict(status)},
                **AS_MERGE_PATCH,
            )
        except ApiException as error:
            if error.status != 404:  # deleted meanwhile: nothing to report on
                raise
            return connection
        return self._answered(obj)

    async def post_event(self, connection: Connection, type_: EventType, reason: str, message: str) -> None:
        now = datetime.now(UTC)
        event = client.CoreV1Event(
            metadata=client.V1ObjectMeta(name=f"{connection.name}.{secrets.token_hex(8)}"),
            involved_object=client.V1ObjectReference(
                api_version=f"{GROUP}/{VERSION}",
                kind=KIND,
                name=connection.name,
                namespace=connection.namespace,
                uid=connection.uid,
                resource_version=connection.resource_version,
            ),
            reason=reason,
            message=message[:1024],
            type=type_,
            source=client.V1EventSource(component=self._component),
            reporting_component=f"{GROUP}/operator",
            reporting_instance=self._instance,
            first_timestamp=now,
            last_timestamp=now,
            count=1,
            action=reason,
        )
        try:
            # The created Event is not used: taken raw, it is not turned into models (timestamps parsed).
            await discard(
                await self._core.create_namespaced_event(connection.namespace, event, _preload_content=False)
            )
        except ApiException as error:
            if error.status not in (403, 404, 409):  # events are best effort; never fail a reconcile on them
                raise
