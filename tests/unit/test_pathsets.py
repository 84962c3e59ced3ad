"""The directories above a set of relative paths."""

from __future__ import annotations

from conveyor.domain.pathsets import ancestors


def test_every_directory_above_each_path_once() -> None:
    assert ancestors(["a/b/c.txt", "a/b/d.txt", "a/e.txt", "f.txt"]) == {"a", "a/b"}


def test_top_level_paths_and_nothing_have_none() -> None:
    assert ancestors(["x", "y"]) == set()
    assert ancestors([]) == set()


def test_a_shared_parent_found_first_still_gives_the_deeper_ones() -> None:
    # "a" is found through the first path; the second's "a/b/c" and "a/b" still count
    assert ancestors(["a/x", "a/b/c/y"]) == {"a", "a/b", "a/b/c"}
