"""Model resolution: the embedded default model (SHA-256 verified), local directories, hub ids."""
import zipfile

import pytest

from clio_engine.embed.model_source import DEFAULT_MODEL_SHA256, _extract_verified, resolve_model, sha256_file
from clio_engine.embed.st_config import read_sentence_model_spec
from clio_engine.errors import ModelError

pytestmark = pytest.mark.unit


def test_default_model_resolves_and_is_verified():
    source = resolve_model("default")
    assert sha256_file(source.path / "model.safetensors") == DEFAULT_MODEL_SHA256
    spec = read_sentence_model_spec(source.path)
    assert spec.pooling == ("mean",) and spec.normalize and spec.max_seq_length == 256


def test_default_model_extracts_to_given_cache_once(tmp_path):
    first = resolve_model("default", cache_dir=tmp_path)
    assert first.path.parent.parent == tmp_path
    stamp = (first.path / "model.safetensors").stat().st_mtime_ns
    again = resolve_model("default", cache_dir=tmp_path)
    assert (again.path / "model.safetensors").stat().st_mtime_ns == stamp


def test_tampered_weights_are_refused(tmp_path):
    bad_zip = tmp_path / "model.zip"
    with zipfile.ZipFile(bad_zip, "w") as archive:
        archive.writestr("model.safetensors", b"not the real weights")
    with pytest.raises(ModelError, match="expected " + DEFAULT_MODEL_SHA256):
        _extract_verified(bad_zip, tmp_path / "target")
    assert not (tmp_path / "target").exists()


def test_local_directory_hash_is_stable_and_content_sensitive(tiny_bert_dir, tmp_path):
    import shutil

    a = resolve_model(str(tiny_bert_dir))
    assert resolve_model(str(tiny_bert_dir)).content_hash == a.content_hash
    copy = tmp_path / "copy"
    shutil.copytree(tiny_bert_dir, copy)
    (copy / "sentence_bert_config.json").write_text('{"max_seq_length": 32}')
    assert resolve_model(str(copy)).content_hash != a.content_hash


def test_unreachable_hub_id_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="could not be fetched from the Hugging Face hub"):
        resolve_model("sentence-transformers/no-such-model-xyz")


@pytest.mark.parametrize("name", ["", None])
def test_empty_model_name_is_an_error(name):
    with pytest.raises(ModelError, match="non-empty string"):
        resolve_model(name)
