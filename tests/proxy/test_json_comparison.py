"""Specification of the shadow comparison of two JSON answers."""

from __future__ import annotations

from strangler_proxy.comparison import differing_fields, generalise, is_ignored, unexplained


def test_equal_documents_have_no_differences() -> None:
    document = {"id": 1, "items": [{"a": 1}], "next_cursor": None}
    assert differing_fields(document, document) == []


def test_differences_are_named_by_dotted_paths() -> None:
    monolith = {"id": 1, "author": {"display_name": "Ada"}, "items": [1, 2]}
    service = {"id": 1, "author": {"display_name": "Grace"}, "items": [1, 2, 3], "extra": True}
    assert differing_fields(monolith, service) == ["author.display_name", "extra", "items.2"]


def test_a_number_is_not_equal_to_the_same_text_nor_true_to_one() -> None:
    assert differing_fields({"id": 1}, {"id": "1"}) == ["id"]
    assert differing_fields({"ok": True}, {"ok": 1}) == ["ok"]


def test_ignore_rules_cover_a_field_and_everything_below_it_with_wildcards() -> None:
    assert is_ignored("items.3.created_at", ["items.*.created_at"])
    assert is_ignored("as_of", ["as_of"])
    assert is_ignored("author.display_name", ["author"])
    assert not is_ignored("items.3.title", ["items.*.created_at"])


def test_only_unexplained_differences_count() -> None:
    monolith = {"as_of": "a", "items": [{"id": 1, "created_at": "x"}]}
    service = {"as_of": "b", "items": [{"id": 2, "created_at": "y"}]}
    assert unexplained(monolith, service, ["as_of", "items.*.created_at"]) == ["items.0.id"]


def test_learned_fields_generalise_list_positions() -> None:
    assert generalise("items.12.nonce") == "items.*.nonce"
