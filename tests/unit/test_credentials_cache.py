"""The cache of credentials Secrets (procon.k8s.credentials_cache): fed by the watch, kept only for
referenced Secrets, dropped on deletion, and a read that missed it does not overwrite what the
watch said meanwhile."""

from __future__ import annotations

import asyncio

from procon.k8s.credentials_cache import CredentialsCache
from procon.reconcile.ports import CredentialsSecret

KEY = ("shop", "shop-key")
KEY_MATERIAL = "rk_test_51" + "k" * 40


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def secret(version: str, key: str = KEY_MATERIAL) -> CredentialsSecret:
    return CredentialsSecret(opted_in=True, data={"apiKey": key}, uid="uid-s", resource_version=version)


def cache(referenced: set[tuple[str, str]] | None = None, clock: Clock | None = None) -> CredentialsCache:
    refs = {KEY} if referenced is None else referenced
    return CredentialsCache(lambda key: key in refs, max_age=300, clock=clock or Clock())


def test_an_event_for_a_referenced_secret_is_served_and_the_next_one_replaces_it() -> None:
    kept = cache()
    kept.delivered(KEY, secret("5"))
    assert kept.get(KEY) == secret("5")
    kept.delivered(KEY, secret("6", "rk_test_51" + "n" * 40))
    served = kept.get(KEY)
    assert served is not None
    assert (served.resource_version, served.data["apiKey"]) == ("6", "rk_test_51" + "n" * 40)


def test_deletion_or_the_opt_in_label_removed_drops_the_entry() -> None:
    kept = cache()
    kept.delivered(KEY, secret("5"))
    kept.delivered(KEY, None)  # DELETED, or no longer matching the label selector
    assert kept.get(KEY) is None
    kept.delivered(KEY, secret("7"))
    kept.delivered(KEY, CredentialsSecret(opted_in=False))
    assert kept.get(KEY) is None
    assert len(kept) == 0


def test_an_unreferenced_secret_is_not_kept_and_one_no_longer_referenced_goes() -> None:
    refs: set[tuple[str, str]] = set()
    kept = cache(refs)
    kept.delivered(KEY, secret("5"))
    assert len(kept) == 0  # no connection of this process uses it: its key is not held
    refs.add(KEY)
    kept.delivered(KEY, secret("6"))
    assert len(kept) == 1
    kept.drop(KEY)  # its last connection went
    assert len(kept) == 0
    assert kept.state_entries() == {"cached_credentials": 0, "credentials_reads": 0}


def test_entries_older_than_the_max_age_are_read_afresh() -> None:
    clock = Clock()
    kept = cache(clock=clock)
    kept.delivered(KEY, secret("5"))
    clock.now += 299
    assert kept.get(KEY) is not None
    clock.now += 1
    assert kept.get(KEY) is None
    assert len(kept) == 0


def test_a_miss_reads_once_for_all_readers_and_keeps_the_result() -> None:
    kept = cache()
    reads = 0

    async def main() -> list[CredentialsSecret | None]:
        gate = asyncio.Event()

        async def fetch() -> CredentialsSecret | None:
            nonlocal reads
            reads += 1
            await gate.wait()
            return secret("5")

        readers = [asyncio.ensure_future(kept.read(KEY, fetch)) for _ in range(10)]
        await asyncio.sleep(0)
        gate.set()
        return await asyncio.gather(*readers)

    assert asyncio.run(main()) == [secret("5")] * 10
    assert reads == 1
    assert kept.get(KEY) == secret("5")  # the next reconcile makes no request
    assert kept.state_entries()["credentials_reads"] == 0


def test_an_event_during_a_read_wins_over_the_read() -> None:
    """The read may have been answered before a change the event reports, or before a deletion:
    what the watch said is kept, not the read."""
    for delivered in (secret("9"), None):
        kept = cache()

        async def main(
            kept: CredentialsCache, delivered: CredentialsSecret | None
        ) -> CredentialsSecret | None:
            async def fetch() -> CredentialsSecret | None:
                kept.delivered(KEY, delivered)  # arrives while the read is in flight
                return secret("8")

            return await kept.read(KEY, fetch)

        assert asyncio.run(main(kept, delivered)) == secret("8")  # this reconcile uses what it read ...
        assert kept.get(KEY) == delivered  # ... the cache holds the watch's view


def test_a_read_that_finds_nothing_or_fails_keeps_nothing() -> None:
    kept = cache()

    async def nothing() -> CredentialsSecret | None:
        return None

    async def fails() -> CredentialsSecret | None:
        raise RuntimeError("the API server is down")

    assert asyncio.run(kept.read(KEY, nothing)) is None
    try:
        asyncio.run(kept.read(KEY, fails))
    except RuntimeError:
        pass
    else:
        raise AssertionError("the read's failure reaches its reader")
    assert len(kept) == 0
    assert kept.state_entries()["credentials_reads"] == 0


def test_key_material_is_in_no_repr() -> None:
    kept = cache()
    kept.delivered(KEY, secret("5"))
    assert KEY_MATERIAL not in repr(kept.get(KEY))
    assert KEY_MATERIAL not in repr(kept)
    assert KEY_MATERIAL not in repr(kept._entries)
