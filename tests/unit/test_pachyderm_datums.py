"""Pachyderm datums against the examples of Pachyderm's own documentation.

Sources (pachyderm/docs-content, commit 7b1d89f0):
- globs: ``.archive/2.5.x/concepts/pipeline-concepts/datum/glob-pattern.md`` (the states
  and cities example) and ``2.8.x/learn/glossary/glob-pattern.md``;
- capture groups and joins: ``2.8.x/build-dags/pipeline-spec/input-join.md`` (the capture
  group table, the readings/parameters inner and outer joins);
- group: ``.archive/2.5.x/concepts/pipeline-concepts/datum/group.md`` (lab results);
- variables: ``2.8.x/set-up/environment-variables.md`` (``images=/pfs/images/liberty.png``).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conveyor.plan.pachyderm_datums import MAX_DATUMS, Datum, DatumError, datums
from conveyor.spec.pachyderm import parse_specs
from conveyor.spec.pachyderm_glob import compile_glob
from conveyor.spec.pachyderm_model import Input

STATES = [
    ("California/LosAngeles.json", "d1"),
    ("California/SanDiego.json", "d2"),
    ("California/SanFrancisco.json", "d3"),
    ("Colorado/Denver.json", "d4"),
    ("Colorado/Boulder.json", "d5"),
    ("Colorado/ColoradoSprings.json", "d6"),
    ("Texas/Austin.json", "d7"),
    ("Texas/Houston.json", "d8"),
]


def tree(input_yaml: str) -> Input:
    text = f"pipeline: {{name: p}}\ntransform: {{cmd: [sh]}}\ninput:\n{input_yaml}"
    return parse_specs(text, "spec.yaml", is_json=False).pipelines[0].input


def pfs(glob: str, repo: str = "states", extra: str = "") -> Input:
    return tree(f"  pfs: {{repo: {repo}, glob: '{glob}'{extra}}}\n")


def paths(found: list[Datum]) -> list[list[str]]:
    return [[f"{i.name}:{i.path}" for i in d.inputs] for d in found]


def test_the_root_glob_is_one_datum_of_the_whole_repository() -> None:
    (datum,) = datums(pfs("/"), {"states": STATES})
    assert datum.inputs[0].path == "/"
    assert len(datum.inputs[0].files) == len(STATES)


def test_a_star_is_a_datum_per_top_level_directory_with_all_its_files() -> None:
    found = datums(pfs("/*"), {"states": STATES})
    assert paths(found) == [["states:/California"], ["states:/Colorado"], ["states:/Texas"]]
    assert [f for f, _ in found[1].inputs[0].files] == [
        "/Colorado/Boulder.json",
        "/Colorado/ColoradoSprings.json",
        "/Colorado/Denver.json",
    ]


def test_a_fixed_directory_then_a_star_is_a_datum_per_file_in_it() -> None:
    found = datums(pfs("/Colorado/*"), {"states": STATES})
    assert paths(found) == [
        ["states:/Colorado/Boulder.json"],
        ["states:/Colorado/ColoradoSprings.json"],
        ["states:/Colorado/Denver.json"],
    ]


def test_a_prefix_glob_matches_the_directories_it_names() -> None:
    found = datums(pfs("/C*"), {"states": STATES})
    assert paths(found) == [["states:/California"], ["states:/Colorado"]]


def test_two_stars_are_a_datum_per_file_two_levels_down() -> None:
    assert len(datums(pfs("/*/*"), {"states": STATES})) == len(STATES)


def test_a_double_star_crosses_directories() -> None:
    listing = [("a/test1.txt", "1"), ("a/b/mytest.txt", "2"), ("a/b/other.txt", "3")]
    found = datums(pfs("/**test*.txt", repo="r"), {"r": listing})
    assert paths(found) == [["r:/a/b/mytest.txt"], ["r:/a/test1.txt"]]
    # /** is every file and every directory, at any depth
    assert len(datums(pfs("/**", repo="r"), {"r": listing})) == 5


@pytest.mark.parametrize(
    ("glob", "path", "groups"),
    [
        ("/(*)", "/foo", ("foo",)),
        ("/*/bar-(*)", "/foo/bar-123", ("123",)),
        ("/(*)/*/(??)*.txt", "/foo/bar-123/ABC.txt", ("foo", "AB")),
        ("/*/(bar-(123))/*", "/foo/bar-123/ABC.txt", ("bar-123", "123")),
    ],
)
def test_capture_groups_as_the_join_docs_number_them(
    glob: str, path: str, groups: tuple[str, ...]
) -> None:
    assert compile_glob(glob).match(path) == groups


READINGS = [(f"ID1234/file{i}.txt", f"r{i}") for i in range(1, 6)]
PARAMETERS = [(f"file{i}.txt", f"p{i}") for i in range(1, 9)]


def joins(outer: bool) -> Input:
    flag = ", outer_join: true" if outer else ""
    return tree(
        "  join:\n"
        "    - pfs: {repo: readings, glob: '/*/(*).txt', join_on: '$1'}\n"
        f"    - pfs: {{repo: parameters, glob: '/(*).txt', join_on: '$1'{flag}}}\n"
    )


def test_an_inner_join_pairs_the_files_whose_captures_agree() -> None:
    found = datums(joins(outer=False), {"readings": READINGS, "parameters": PARAMETERS})
    assert len(found) == 5  # files 6 to 8 match nothing
    assert paths(found)[0] == ["readings:/ID1234/file1.txt", "parameters:/file1.txt"]
    assert found[0].env()["PACH_DATUM_readings_JOIN_ON"] == "file1"


def test_an_outer_join_keeps_the_unmatched_files_of_its_outer_input() -> None:
    found = datums(joins(outer=True), {"readings": READINGS, "parameters": PARAMETERS})
    assert len(found) == 8  # the five pairs and one datum per unmatched parameter
    assert paths(found)[5:] == [
        ["parameters:/file6.txt"],
        ["parameters:/file7.txt"],
        ["parameters:/file8.txt"],
    ]


def test_a_join_gives_every_combination_of_the_files_of_one_key() -> None:
    found = datums(
        joins(outer=False),
        {"readings": [("a/x.txt", "1"), ("b/x.txt", "2")], "parameters": [("x.txt", "3")]},
    )
    assert paths(found) == [
        ["readings:/a/x.txt", "parameters:/x.txt"],
        ["readings:/b/x.txt", "parameters:/x.txt"],
    ]


def test_a_group_puts_the_files_of_one_key_in_one_datum() -> None:
    lab = [
        ("LIPID-patientID1-labID1.txt", "1"),
        ("LIPID-patientID2-labID1.txt", "2"),
        ("LIPID-patientID1-labID2.txt", "3"),
        ("LIPID-patientID3-labID3.txt", "4"),
        ("LIPID-patientID1-labID3.txt", "5"),
        ("LIPID-patientID2-labID3.txt", "6"),
    ]
    group = tree(
        "  group:\n    - pfs: {repo: labresults, glob: '/*-(*)-lab*.txt', group_by: '$1'}\n"
    )
    found = datums(group, {"labresults": lab})
    assert [sorted(d for i in f.inputs for _, d in i.files) for f in found] == [
        ["1", "3", "5"],
        ["2", "6"],
        ["4"],
    ]
    assert found[1].env()["PACH_DATUM_labresults_GROUP_BY"] == "patientID2"


def test_cross_is_the_product_and_union_the_concatenation() -> None:
    images = [("a.png", "1"), ("b.png", "2"), ("c.png", "3")]
    model = [("model.pt", "m")]
    cross = tree(
        "  cross:\n    - pfs: {repo: images, glob: /*}\n    - pfs: {repo: model, glob: /}\n"
    )
    found = datums(cross, {"images": images, "model": model})
    assert paths(found) == [
        ["images:/a.png", "model:/"],
        ["images:/b.png", "model:/"],
        ["images:/c.png", "model:/"],
    ]
    union = tree(
        "  union:\n    - pfs: {repo: images, glob: /*}\n    - pfs: {repo: model, glob: /*}\n"
    )
    found = datums(union, {"images": images, "model": model})
    assert paths(found) == [
        ["images:/a.png"],
        ["images:/b.png"],
        ["images:/c.png"],
        ["model:/model.pt"],
    ]


def test_a_datum_sets_a_variable_per_input_pointing_into_pfs() -> None:
    (root,) = datums(pfs("/", repo="images"), {"images": [("liberty.png", "1")]})
    assert root.env()["images"] == "/pfs/images"
    (each,) = datums(pfs("/*", repo="images"), {"images": [("liberty.png", "1")]})
    assert each.env()["images"] == "/pfs/images/liberty.png"
    assert each.env()["PACH_DATUM_ID"] == each.id
    assert each.files() == [("/pfs/images/liberty.png", "1")]


def test_lazy_and_empty_files_are_carried_on_the_datum() -> None:
    (datum,) = datums(
        pfs("/", repo="r", extra=", lazy: true, empty_files: true"), {"r": [("f", "1")]}
    )
    assert (datum.inputs[0].lazy, datum.inputs[0].empty_files) == (True, True)


def test_the_key_follows_content_transform_and_salt_the_id_only_paths() -> None:
    (a,) = datums(pfs("/*", repo="r"), {"r": [("f", "1")]})
    (b,) = datums(pfs("/*", repo="r"), {"r": [("f", "2")]})
    assert a.id == b.id
    assert a.key("t", None) != b.key("t", None)
    assert a.key("t", None) != a.key("t", "salt")
    assert a.key("t", None) != a.key("u", None)
    assert a.key("t", None) == datums(pfs("/*", repo="r"), {"r": [("/f", "1")]})[0].key("t", None)


def test_nothing_to_match_gives_no_datum() -> None:
    assert datums(pfs("/*", repo="r"), {"r": []}) == []
    assert datums(pfs("/*.csv", repo="r"), {"r": [("a.txt", "1")]}) == []


def test_a_missing_listing_or_a_dirty_path_is_refused() -> None:
    with pytest.raises(DatumError, match="no listing for input 'r'"):
        datums(pfs("/*", repo="r"), {})
    with pytest.raises(DatumError, match="not a clean path"):
        datums(pfs("/*", repo="r"), {"r": [("a/../b", "1")]})


def test_a_cross_of_too_many_datums_is_refused_before_it_is_built() -> None:
    many = [(f"f{i}", str(i)) for i in range(1001)]
    cross = tree("  cross:\n    - pfs: {repo: a, glob: /*}\n    - pfs: {repo: b, glob: /*}\n")
    with pytest.raises(DatumError, match=f"more than {MAX_DATUMS} datums"):
        datums(cross, {"a": many, "b": many})


def test_a_caller_can_find_listings_by_repository_instead_of_name() -> None:
    union = tree(
        "  union:\n    - pfs: {repo: a, glob: /*, name: x}\n    - pfs: {repo: b, glob: /*, name: x}\n"
    )
    found = datums(union, {"a": [("1", "d")], "b": [("2", "e")]}, key=lambda leaf: leaf.repo)
    assert [(i.repo, i.path) for d in found for i in d.inputs] == [("a", "/1"), ("b", "/2")]


def test_a_star_matches_dot_files_as_pachyderm_globs_do() -> None:
    found = datums(pfs("/*", repo="r"), {"r": [(".hidden", "1"), ("seen", "2")]})
    assert paths(found) == [["r:/.hidden"], ["r:/seen"]]


NAMES = st.lists(
    st.sampled_from(["a1.txt", "a2.txt", "b1.txt", "c2.txt", "d/a1.txt", "d/b3.txt", "e/f/c1.txt"]),
    unique=True,
    max_size=7,
)


def listing(paths: list[str]) -> list[tuple[str, str]]:
    return [(path, f"digest-{path}") for path in paths]


@settings(max_examples=150, deadline=None)
@given(NAMES, NAMES)
def test_cross_multiplies_and_union_adds(left: list[str], right: list[str]) -> None:
    listings = {"l": listing(left), "r": listing(right)}
    one = {name: len(datums(pfs("/**.txt", repo=name), listings)) for name in ("l", "r")}
    both = "    - pfs: {repo: l, glob: '/**.txt'}\n    - pfs: {repo: r, glob: '/**.txt'}\n"
    assert len(datums(tree("  cross:\n" + both), listings)) == one["l"] * one["r"]
    assert len(datums(tree("  union:\n" + both), listings)) == one["l"] + one["r"]


@settings(max_examples=150, deadline=None)
@given(NAMES, NAMES)
def test_an_outer_join_holds_the_inner_join_and_every_file_of_its_outer_input(
    left: list[str], right: list[str]
) -> None:
    listings = {"l": listing(left), "r": listing(right)}

    def join(outer: str) -> list[Datum]:
        return datums(
            tree(
                "  join:\n"
                f"    - pfs: {{repo: l, glob: '/**([0-9]).txt', join_on: '$1'{outer}}}\n"
                "    - pfs: {repo: r, glob: '/**([0-9]).txt', join_on: '$1'}\n"
            ),
            listings,
        )

    inner, outer = join(""), join(", outer_join: true")
    assert {d.id for d in inner} <= {d.id for d in outer}
    seen = {i.path for d in outer for i in d.inputs if i.name == "l"}
    assert seen == {"/" + path for path in left}
    for datum in inner:
        assert len({i.join_on for i in datum.inputs}) == 1


@settings(max_examples=150, deadline=None)
@given(NAMES, NAMES)
def test_a_group_puts_every_matched_file_in_exactly_one_datum(
    left: list[str], right: list[str]
) -> None:
    listings = {"l": listing(left), "r": listing(right)}
    found = datums(
        tree(
            "  group:\n"
            "    - pfs: {repo: l, glob: '/**([a-z])[0-9].txt', group_by: '$1'}\n"
            "    - pfs: {repo: r, glob: '/**([a-z])[0-9].txt', group_by: '$1'}\n"
        ),
        listings,
    )
    files = [(i.name, i.path) for d in found for i in d.inputs]
    assert sorted(files) == sorted([("l", "/" + p) for p in left] + [("r", "/" + p) for p in right])
    assert len({d.inputs[0].group_by for d in found}) == len(found)
