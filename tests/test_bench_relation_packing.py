"""``scripts/bench_relation_packing.py`` on the tiny trained run: both packings find the same relations
and the script says so (its exit status is what ``make bench`` users read first)."""

from conftest import load_script


def test_both_packings_find_the_same_relations(world, capsys):
    tmp, _ = world
    script = load_script("bench_relation_packing")
    assert script.main(["--model", str(tmp / "run"), "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    # The tiny run's threshold is 0: every allowed pair is a relation, so there are many to compare.
    lines = [line for line in out.splitlines() if "pairs a pass" in line]
    assert len(lines) == 2 and all("the same" in line and "NOT" not in line for line in lines)
    assert int(lines[0].split("relations")[0].split()[-1]) > 0
