"""The names written blind for the name-quality benchmark's gold partition (benchmarks/reference_names):
each set's file names every label exactly once, a file that misses or repeats one is refused rather than
scored in part, and the sheet the names were written from shows texts only, in the same order every time."""
import numpy as np
import pytest

from benchmarks import name_quality

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("name", sorted(name_quality.SETS))
def test_each_label_has_one_written_name_and_the_sheet_hides_the_labels(name, data_dir):
    if not (data_dir / name_quality.SETS[name]).exists():
        pytest.skip(f"{name_quality.SETS[name]} is absent from {data_dir}")
    texts, gold = name_quality.load_set(data_dir, name)
    labels = np.unique(gold)
    written = name_quality.reference_names(name, labels)
    assert len(written) == len(labels) and all(w.strip() for w in written)
    lines, key = name_quality.blind_sheet(name, texts, gold)
    assert sorted(key) == sorted(labels) and len(lines) == len(labels)
    assert name_quality.blind_sheet(name, texts, gold) == (lines, key)  # the protocol can be redone
    for line, label in zip(lines, key):
        shown = line.split(": ", 1)[1].split(" | ")
        assert len(shown) == name_quality.BLIND_TEXTS
        assert set(shown) <= set(np.asarray(texts)[gold == label]), "a line shows texts of another label"
        assert label not in line  # "card_arrival" never appears: the sheet carries no label


def test_a_file_missing_a_label_or_naming_one_twice_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(name_quality, "REFERENCE_NAMES", tmp_path)
    (tmp_path / "toy.csv").write_text("label,name\na,Alpha\nb,Beta\n")
    assert name_quality.reference_names("toy", np.array(["b", "a"])) == ["Beta", "Alpha"]
    with pytest.raises(ValueError, match="1 missing"):
        name_quality.reference_names("toy", np.array(["a", "b", "c"]))
    (tmp_path / "toy.csv").write_text("label,name\na,Alpha\na,Again\nb,Beta\n")
    with pytest.raises(ValueError, match="one name per label"):
        name_quality.reference_names("toy", np.array(["a", "b"]))
    (tmp_path / "toy.csv").write_text("label,name\na,Alpha\nb,Beta\nz,Zed\n")
    with pytest.raises(ValueError, match=r"unknown \['z'\]"):
        name_quality.reference_names("toy", np.array(["a", "b"]))
    (tmp_path / "toy.csv").write_text("label,name\na,Alpha\nb,  \n")
    with pytest.raises(ValueError, match=r"blank \['b'\]"):
        name_quality.reference_names("toy", np.array(["a", "b"]))
    (tmp_path / "toy.csv").write_text("label,name\n1,One\n2,Two\n")  # numeric labels read as load_set reads them
    assert name_quality.reference_names("toy", np.array(["1", "2"])) == ["One", "Two"]
    assert name_quality.reference_names("absent", np.array(["a"])) is None
