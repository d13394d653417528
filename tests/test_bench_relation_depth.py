"""``scripts/bench_relation_depth.py`` on the tiny trained run: the cut relation encoder and the asked-for
marker layout are the ones timed."""

from conftest import load_script

from conflict_ie.predictor import Predictor


def test_only_the_kept_layers_run_and_every_depth_is_reported(world, capsys, monkeypatch):
    tmp, _ = world
    calls, loaded = {0: 0, 1: 0}, []
    original = Predictor.from_pretrained

    def spy(*args, **kwargs):  # counts the calls of each of the tiny run's two relation layers
        pred = original(*args, **kwargs)
        for k, layer in enumerate(pred.relation_model.model.encoder.encoder.layer):
            layer.register_forward_hook(lambda *_, k=k: calls.__setitem__(k, calls[k] + 1))
        loaded.append(pred)
        return pred

    monkeypatch.setattr(Predictor, "from_pretrained", spy)
    assert load_script("bench_relation_depth").main(["--model", str(tmp / "run"), "--layers", "1", "--rounds", "1"]) == 0
    assert calls[0] > 0 and calls[1] == 0
    assert len(loaded[0].relation_model.model.encoder.encoder.layer) == 2  # put back afterwards
    out = capsys.readouterr().out
    assert "baseline: entities only" in out
    assert [line.split("|")[1].strip() for line in out.splitlines() if line.startswith("|")] == [
        "entities only", "full, relation encoder 1 layers"]


def test_more_layers_than_the_run_has_is_refused(world, capsys):
    tmp, _ = world
    assert load_script("bench_relation_depth").main(["--model", str(tmp / "run"), "--layers", "3", "--rounds", "1"]) == 2
    assert "has 2 layers; asked for 3" in capsys.readouterr().err


def test_each_marker_layout_is_the_one_packed(world, capsys, monkeypatch):
    from conflict_ie.relation_data import RelationEncoder

    tmp, _ = world
    seen, original = [], RelationEncoder.pack

    def spy(self, window, jobs, stats=None):
        seen.append(self.markers)
        return original(self, window, jobs, stats)

    monkeypatch.setattr(RelationEncoder, "pack", spy)
    loaded, from_pretrained = [], Predictor.from_pretrained
    monkeypatch.setattr(Predictor, "from_pretrained", lambda *a, **k: loaded.append(from_pretrained(*a, **k))
                        or loaded[-1])
    script = load_script("bench_relation_depth")
    assert script.main(["--model", str(tmp / "run"), "--layers", "2", "--markers", "start_end", "start",
                        "--rounds", "1"]) == 0
    assert seen and set(seen) == {"start_end", "start"} and seen[-1] == "start"
    assert loaded[0].relation_model.encoder.markers == "start_end"  # put back afterwards
    rows = [line.split("|")[1].strip() for line in capsys.readouterr().out.splitlines() if line.startswith("|")]
    assert rows == ["entities only", "full, relation encoder 2 layers",
                    "full, relation encoder 2 layers, start markers"]
