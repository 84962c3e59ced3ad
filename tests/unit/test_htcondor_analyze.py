"""Why no machine matches an HTCondor job, from its requests and the pool's slots."""

from __future__ import annotations

from conveyor.executors.htcondor.analyze import why_no_match

JOB = {"RequestCpus": 1, "RequestMemory": 512000, "RequestDisk": 1024}
SLOTS = [{"Cpus": 20, "Memory": 24105, "Disk": 82883732}, {"Cpus": 4, "Memory": 8000}]


def test_a_request_larger_than_every_slot_is_named_with_its_setting() -> None:
    why = why_no_match(JOB, SLOTS, 0, "TARGET.Memory >= RequestMemory")
    assert why == (
        "no machine matches the job: it asks for 512000 MB of memory (resources.memory) "
        "and the largest of the pool's 2 slot(s) has 24105 MB"
    )


def test_every_oversized_request_is_named() -> None:
    job = {**JOB, "RequestCpus": 64}
    why = why_no_match(job, SLOTS, 0, "true") or ""
    assert "64 of CPUs (resources.cpus)" in why and "of memory" in why
    assert "of disk" not in why


def test_requirements_no_slot_meets_are_quoted() -> None:
    job = {**JOB, "RequestMemory": 100}
    why = why_no_match(job, SLOTS, 0, 'OpSys == "WINDOWS"  &&\n  Arch == "X86_64"') or ""
    assert why.endswith('(OpSys == "WINDOWS" && Arch == "X86_64") or accepts it')


def test_a_slot_that_matches_means_the_job_only_waits() -> None:
    assert why_no_match(JOB, SLOTS, 1, "true") is None


def test_a_pool_without_slots_says_so() -> None:
    assert why_no_match(JOB, [], 0, "true") == (
        "the HTCondor pool has no machines (its collector lists no slots)"
    )


def test_values_that_are_not_numbers_are_not_compared() -> None:
    job = {"RequestMemory": None, "RequestCpus": True, "RequestDisk": "x"}
    why = why_no_match(job, SLOTS, 0, "true") or ""
    assert "none of the pool's 2 slot(s) meets its requirements" in why
