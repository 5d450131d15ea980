"""procon.k8s.signing_index: a name is known absent only where the watch has finished listing,
and a listing afresh replaces what was known in its scope."""

from __future__ import annotations

from procon.k8s.signing_index import SigningSecretIndex


def test_nothing_is_known_absent_before_the_first_listing_has_finished() -> None:
    index = SigningSecretIndex()
    assert not index.known_absent(("shop", "a"))
    index.listing("shop")
    index.listed_one("shop", ("shop", "a"))
    assert not index.known_absent(("shop", "b"))  # still listing
    index.listed("shop")
    assert index.known_absent(("shop", "b"))
    assert not index.known_absent(("shop", "a"))
    assert not index.known_absent(("other", "b"))  # a scope never listed


def test_a_cluster_wide_listing_covers_every_namespace() -> None:
    index = SigningSecretIndex()
    index.listing(None)
    index.listed_one(None, ("shop", "a"))
    index.listed(None)
    assert index.known_absent(("other", "b"))
    assert not index.known_absent(("shop", "a"))


def test_events_and_a_listing_afresh_keep_it_true() -> None:
    index = SigningSecretIndex()
    index.listing("shop")
    index.listed_one("shop", ("shop", "a"))
    index.listed("shop")
    index.present(("shop", "b"))
    index.gone(("shop", "a"))
    assert index.known_absent(("shop", "a"))
    assert not index.known_absent(("shop", "b"))
    # The watch lists again (its version expired): "b" went meanwhile, "c" came; a Secret this
    # process wrote while the listing ran is kept, though the listing's snapshot predates it.
    index.listing("shop")
    assert not index.known_absent(("shop", "a"))  # unknown until the listing ends
    index.listed_one("shop", ("shop", "c"))
    index.present(("shop", "d"))
    index.listed("shop")
    assert index.known_absent(("shop", "b"))
    assert not index.known_absent(("shop", "c"))
    assert not index.known_absent(("shop", "d"))
    assert len(index) == 2
