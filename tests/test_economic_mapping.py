"""Task mapping (engine/economic/mapping.py) and the task tree (task_tree.py).

Unit tests use hand-built unit vectors and a tree grouped from them (real KMeans + hierarchy grouping),
checked against plain numpy references; one tiny-model build; one slow quality test with the default model.
"""
from __future__ import annotations

import time

import numpy as np
import pytest

from clio_engine.economic.mapping import NOT_WORK_OPTION, NO_TASK, TaskMapping, lexical_terms, map_to_tasks
from clio_engine.economic.task_tree import TaskTree, build_task_tree, tree_cache_dir, tree_from_vectors
from clio_engine.errors import ConfigError, InputError


def unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def tree() -> TaskTree:
    rng = np.random.default_rng(0)
    return tree_from_vectors(unit(rng.normal(size=(400, 24))), mid=30, top=5, seed=0)


def planted(tree, n=200, noise=0.15, seed=1):
    """Records near known tasks: (vectors [n, D], planted task [n])."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, tree.n_tasks, n)
    return unit(tree.vectors[truth] + noise * rng.normal(size=(n, tree.dim)) / np.sqrt(tree.dim)), truth


def reference(x, tree):
    """Plain numpy: fp32 cosines, nearest task and its similarity, runner-up similarity."""
    sims = x.astype(np.float64) @ tree.vectors.T.astype(np.float64)
    order = np.argsort(-sims, axis=1)
    rows = np.arange(len(x))
    return order[:, 0], sims[rows, order[:, 0]], sims[rows, order[:, 1]], sims


class Recorder:
    """A chooser picking a fixed position (capped at the list's length) and keeping what it was shown."""

    def __init__(self, position):
        self.position, self.seen = position, {}

    def __call__(self, level, records, candidates):
        width = (candidates >= 0).sum(axis=1)
        picks = np.minimum(self.position, width - 1)
        self.seen[level] = (records.copy(), candidates.copy(), picks)
        return picks


def test_planted_nearest_task_and_reference_similarity(tree):
    x, truth = planted(tree)
    m = map_to_tasks(x, tree, no_task_floor=None)
    best, best_sim, second_sim, _ = reference(x, tree)
    assert isinstance(m, TaskMapping) and len(m) == len(x)
    np.testing.assert_array_equal(m.task, truth)
    np.testing.assert_array_equal(m.task, best)
    np.testing.assert_allclose(m.similarity, best_sim, atol=1e-5)
    np.testing.assert_allclose(m.margin, best_sim - second_sim, atol=1e-5)
    np.testing.assert_array_equal(m.mid, tree.mid[m.task])
    np.testing.assert_array_equal(m.top, tree.top[tree.mid[m.task]])
    assert ((m.confidence >= 0) & (m.confidence <= 1)).all()
    scaled = map_to_tasks(3.0 * x, tree, no_task_floor=None)  # rows are normalised: cosines, not dot products
    np.testing.assert_array_equal(scaled.task, m.task)
    np.testing.assert_allclose(scaled.similarity, m.similarity, atol=1e-5)


def test_top_down_equals_flat_without_chooser(tree):
    """A node scores its best task, so the descent finds the flat nearest task for any `candidates`."""
    x, _ = planted(tree, noise=0.8, seed=2)  # far from tasks: many records whose nearest is contested
    best, _, _, _ = reference(x, tree)
    flat = map_to_tasks(x, tree, candidates=None, no_task_floor=None)
    for c in (1, 2, 5, 50):
        m = map_to_tasks(x, tree, candidates=c, no_task_floor=None)
        # bf16 node scores may swap near-tied top nodes at c=1; the fp32 answer may then differ by < 0.01
        agree = m.task == flat.task
        assert agree.mean() >= 0.97, c
        assert (flat.similarity[~agree] - m.similarity[~agree] < 0.01).all()
    np.testing.assert_array_equal(flat.task, best)


def test_chunking_matches_unchunked_numpy_reference(tree):
    x, _ = planted(tree, n=301, noise=0.6, seed=3)
    whole = map_to_tasks(x, tree, no_task_floor=None, chunk_rows=10_000)
    for rows in (1, 7, 64):
        part = map_to_tasks(x, tree, no_task_floor=None, chunk_rows=rows)
        np.testing.assert_array_equal(part.task, whole.task)
        np.testing.assert_allclose(part.similarity, whole.similarity, atol=1e-6)
        np.testing.assert_allclose(part.confidence, whole.confidence, atol=1e-6)
    best, best_sim, second_sim, _ = reference(x, tree)
    clear = best_sim - second_sim > 0.02  # bf16 shortlisting can only confuse near-ties
    assert clear.mean() > 0.5
    np.testing.assert_array_equal(whole.task[clear], best[clear])


def test_pruning_keeps_task_inside_chosen_nodes(tree):
    """A chooser that always picks the last candidate: the task must lie under the chosen top and middle
    nodes, and each level's candidates must lie under the previous level's choice."""
    x, _ = planted(tree, noise=0.7, seed=4)
    chooser = Recorder(position=10)
    m = map_to_tasks(x, tree, candidates=3, no_task_floor=None, chooser=chooser)
    _, _, _, sims = reference(x, tree)
    rec_top, cand_top, pick_top = chooser.seen["top"]
    rec_mid, cand_mid, pick_mid = chooser.seen["mid"]
    rec_task, cand_task, pick_task = chooser.seen["task"]
    np.testing.assert_array_equal(rec_top, np.arange(len(x)))
    top_chosen = cand_top[np.arange(len(x)), pick_top]
    mid_chosen = cand_mid[np.arange(len(x)), pick_mid]
    task_chosen = cand_task[np.arange(len(x)), pick_task]
    # top candidates: the 3 best top nodes by best-task score (plain pandas-free reference)
    task_top = tree.top[tree.mid]
    top_score = np.stack([sims[:, task_top == g].max(axis=1) for g in range(tree.n_top)], axis=1)
    ref_top = np.argsort(-top_score, axis=1)[:, :3]
    assert (np.sort(cand_top, axis=1) == np.sort(ref_top, axis=1)).mean() > 0.97  # bf16 may swap near-ties
    valid_mid = cand_mid >= 0
    assert (tree.top[cand_mid[valid_mid]] == np.repeat(top_chosen, valid_mid.sum(axis=1))).all()
    valid_task = cand_task >= 0
    assert (tree.mid[cand_task[valid_task]] == np.repeat(mid_chosen, valid_task.sum(axis=1))).all()
    np.testing.assert_array_equal(m.task, task_chosen)
    np.testing.assert_array_equal(m.mid, mid_chosen)
    np.testing.assert_array_equal(m.top, top_chosen)
    assert m.chooser_calls == {"top": len(x), "mid": len(x), "task": len(x)}


def test_chooser_choice_is_honoured_and_first_choice_is_the_embedding(tree):
    x, _ = planted(tree, noise=0.5, seed=5)
    first = map_to_tasks(x, tree, candidates=4, no_task_floor=None, chooser=Recorder(0))
    plain = map_to_tasks(x, tree, candidates=4, no_task_floor=None)
    assert (first.task == plain.task).mean() > 0.97
    second = Recorder(1)
    m = map_to_tasks(x, tree, candidates=4, no_task_floor=None, chooser=second)
    _, cand, picks = second.seen["task"]
    np.testing.assert_array_equal(m.task, cand[np.arange(len(x)), picks])
    _, _, _, sims = reference(x, tree)
    # the task candidates are sorted best first by exact cosine, so the second is never better
    got = sims[np.arange(len(x)), m.task]
    best_in_list = sims[np.arange(len(x)), cand[:, 0]]
    assert (got <= best_in_list + 1e-6).all() and (m.margin <= 1e-6).all()


def test_floor_gives_no_task(tree):
    x, _ = planted(tree, noise=1.5, seed=6)
    _, best_sim, _, _ = reference(x, tree)
    floor = float(np.median(best_sim))
    m = map_to_tasks(x, tree, no_task_floor=floor)
    below = best_sim < floor
    assert 0 < below.sum() < len(x)
    np.testing.assert_array_equal(m.task == NO_TASK, below)
    assert (m.mid[below] == NO_TASK).all() and (m.top[below] == NO_TASK).all()
    assert (m.confidence[below] == 0).all() and (m.task[~below] >= 0).all()
    np.testing.assert_allclose(m.similarity, best_sim, atol=1e-5)  # −1 rows still report the nearest cosine
    chooser = Recorder(0)
    map_to_tasks(x, tree, no_task_floor=floor, chooser=chooser)
    np.testing.assert_array_equal(np.sort(chooser.seen["top"][0]), np.flatnonzero(~below))  # screened: not asked


@pytest.mark.parametrize("bad, needle", [
    (np.zeros((3, 5), np.float32), "vectors must be [N, 24]"),
    (np.zeros(24, np.float32), "vectors must be [N, 24]"),
    (np.full((2, 24), np.nan, np.float32), "row 0 holds a NaN"),
    (np.zeros((2, 24), np.float32), "row 0 is all zeros"),
])
def test_bad_vectors_are_one_line_input_errors(tree, bad, needle):
    with pytest.raises(InputError) as err:
        map_to_tasks(bad, tree)
    assert needle in str(err.value) and "\n" not in str(err.value)


# ------------------------------------------------------------------------------------------- hybrid scoring

WORDS = ("baggage ventilation tubing invoice payroll welding sutures lumber forklift pastry irrigation "
         "turbine dental orchestra vaccine mortgage asphalt textile aquarium satellite").split()


@pytest.fixture(scope="module")
def worded_tree() -> TaskTree:
    """120 tasks whose statements each name three of WORDS after a shared verb."""
    rng = np.random.default_rng(3)
    texts = [f"Arrange the {' '.join(rng.choice(WORDS, 3, replace=False))} for the team." for _ in range(120)]
    return tree_from_vectors(unit(rng.normal(size=(120, 16))), mid=10, top=3, seed=0, texts=texts)


def tfidf_reference(queries, docs):
    """Hand-written TF-IDF cosines [q, d] over `lexical_terms`: tf 1 + ln(count), idf ln((1 + D) / (1 + df)) + 1,
    unit rows; query terms unseen in the docs are dropped (as a fitted vocabulary does)."""
    import pandas as pd

    doc_terms = [pd.Series(lexical_terms(t)).value_counts() for t in docs]
    df = pd.Series([term for c in doc_terms for term in c.index]).value_counts()
    idf = np.log((1 + len(docs)) / (1 + df)) + 1

    def vec(counts):
        counts = counts[counts.index.isin(idf.index)]
        v = (1 + np.log(counts)) * idf[counts.index]
        return v / np.sqrt((v ** 2).sum()) if len(v) else v

    dv = [vec(c) for c in doc_terms]
    out = np.zeros((len(queries), len(docs)))
    for i, q in enumerate(queries):
        qv = vec(pd.Series(lexical_terms(q)).value_counts())
        for j, d in enumerate(dv):
            out[i, j] = float((qv * d.reindex(qv.index).fillna(0)).sum())
    return out


def test_lexical_terms_stem_drop_stop_words_and_pair():
    stems = {lexical_terms(w)[0] for w in ("arranging", "arrange", "arrangement", "arrangements", "arranged")}
    assert stems == {"arrang"}
    terms = lexical_terms("Checking the ventilation tubing, please!")
    assert "the" not in terms and "ventil tub" in terms and "check" in terms
    assert lexical_terms("Tubes") == lexical_terms("tubing")


def test_hybrid_scores_match_numpy_tfidf_reference(worded_tree):
    tree = worded_tree
    rng = np.random.default_rng(4)
    truth = rng.integers(0, tree.n_tasks, 60)
    # Vectors only loosely near their task; texts repeat two of its words in another form.
    x = unit(tree.vectors[truth] + 0.9 * rng.normal(size=(60, tree.dim)) / np.sqrt(tree.dim) * 4)
    texts = [f"could you help me with arranging {' '.join(tree.texts[t].split()[2:4])}?" for t in truth]
    w = 0.3
    cos = x.astype(np.float64) @ tree.vectors.T.astype(np.float64)
    hybrid = cos + w * tfidf_reference(texts, list(tree.texts))
    want = hybrid.argmax(axis=1)
    rows = np.arange(len(x))
    for cand in (None, 5):
        m = map_to_tasks(x, tree, candidates=cand, no_task_floor=None, texts=texts, lexical_weight=w, chunk_rows=7)
        np.testing.assert_array_equal(m.task, want)
        np.testing.assert_allclose(m.score, hybrid[rows, want], atol=1e-4)
        np.testing.assert_allclose(m.similarity, cos[rows, want], atol=1e-5)  # similarity stays the cosine
    pure = map_to_tasks(x, tree, no_task_floor=None)
    assert np.mean(m.task == truth) > np.mean(pure.task == truth) + 0.2  # the words are what pick the task
    zero = map_to_tasks(x, tree, no_task_floor=None, texts=texts, lexical_weight=0.0)
    np.testing.assert_array_equal(zero.task, pure.task)
    # the default floor with texts is the hybrid one, applied to the hybrid score
    from clio_engine.economic.mapping import DEFAULT_HYBRID_FLOOR
    best = hybrid.max(axis=1)
    floor = float(np.median(best))
    floored = map_to_tasks(x, tree, texts=texts, lexical_weight=w, no_task_floor=floor)
    assert 0 < (best < floor).sum() < len(x)
    np.testing.assert_array_equal(floored.task == NO_TASK, best < floor)
    default = map_to_tasks(x, tree, texts=texts, lexical_weight=w)
    explicit = map_to_tasks(x, tree, texts=texts, lexical_weight=w, no_task_floor=DEFAULT_HYBRID_FLOOR)
    np.testing.assert_array_equal(default.task, explicit.task)
    np.testing.assert_array_equal(default.task == NO_TASK, best < DEFAULT_HYBRID_FLOOR)


def test_hybrid_bad_inputs(worded_tree, tree):
    x = unit(np.random.default_rng(0).normal(size=(3, worded_tree.dim)))
    with pytest.raises(InputError, match="3 record texts"):
        map_to_tasks(x, worded_tree, texts=["a", "b"])
    with pytest.raises(InputError, match="3 record texts"):
        map_to_tasks(x, worded_tree, texts="abc")
    with pytest.raises(InputError, match="holding its statements"):
        map_to_tasks(unit(np.ones((3, tree.dim))), tree, texts=["a", "b", "c"])
    with pytest.raises(InputError, match="row 1 is NoneType"):
        map_to_tasks(x, worded_tree, texts=["a", None, "c"])
    import pandas as pd  # a Series with other labels is read by position
    x3 = unit(worded_tree.vectors[:3])
    series = pd.Series(list(worded_tree.texts[:3]), index=[7, 8, 9])
    np.testing.assert_array_equal(map_to_tasks(x3, worded_tree, no_task_floor=None, texts=series).task, [0, 1, 2])
    with pytest.raises(ConfigError, match="lexical_weight"):
        map_to_tasks(x, worded_tree, texts=["a", "b", "c"], lexical_weight=-1)
    with pytest.raises(ConfigError, match="no_task_floor"):
        map_to_tasks(x, worded_tree, no_task_floor="auto")


def test_bad_arguments_and_chooser_answers(tree):
    x, _ = planted(tree, n=5)
    with pytest.raises(ConfigError, match="candidates"):
        map_to_tasks(x, tree, candidates=0)
    with pytest.raises(ConfigError, match="no_task_floor"):
        map_to_tasks(x, tree, no_task_floor=2.0)
    with pytest.raises(InputError, match="picked position 9") as err:
        map_to_tasks(x, tree, candidates=3, no_task_floor=None, chooser=lambda lv, r, c: np.full(len(r), 9))
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match="integer positions"):
        map_to_tasks(x, tree, candidates=3, no_task_floor=None, chooser=lambda lv, r, c: np.zeros(1, int))


def test_tree_structure_and_save_load(tree, tmp_path):
    assert tree.vectors.shape == (400, 24) and tree.n_mid <= 30 and tree.n_top == 5
    np.testing.assert_allclose(np.linalg.norm(tree.mid_centroids, axis=1), 1, atol=1e-5)
    # a middle centroid is the unit mean of its tasks (independent recomputation)
    for node in (0, tree.n_mid - 1):
        mean = tree.vectors[tree.mid == node].mean(axis=0)
        np.testing.assert_allclose(tree.mid_centroids[node], mean / np.linalg.norm(mean), atol=1e-5)
    examples = tree.node_examples("mid", 3)
    cos = tree.vectors[tree.mid == 0] @ tree.mid_centroids[0]
    np.testing.assert_array_equal(examples[0], np.flatnonzero(tree.mid == 0)[np.argsort(-cos)[:3]])
    path = tmp_path / "tree.cache"  # any name: numpy must not add ".npz"
    tree.save(path)
    back = TaskTree.load(path)
    for name in ("vectors", "mid", "top", "mid_centroids", "top_centroids"):
        np.testing.assert_array_equal(getattr(back, name), getattr(tree, name))
    assert back.texts is None
    with pytest.raises(InputError, match="does not exist"):
        TaskTree.load(tmp_path / "missing.npz")


def test_tree_texts_save_load(worded_tree, tmp_path):
    worded_tree.save(tmp_path / "w.npz")
    back = TaskTree.load(tmp_path / "w.npz")
    assert list(back.texts) == list(worded_tree.texts)
    with pytest.raises(InputError, match="120 task statements"):
        TaskTree(worded_tree.vectors, worded_tree.mid, worded_tree.top, worded_tree.mid_centroids,
                 worded_tree.top_centroids, texts=np.array(["only one"], dtype=object))


def test_build_with_tiny_model_and_augmentation(tiny_bert_dir, tmp_path):
    """A real Taxonomy cut to its first 300 statements, the tiny random model, one rewrite per task."""
    from clio_engine.economic.onet import Taxonomy, load_taxonomy
    from clio_engine.economic.paraphrase import paraphrase
    from clio_engine.embed import embed

    full = load_taxonomy()
    links = full.links[full.links.task < 300]
    tax = Taxonomy(full.task_text[:300], full.task_major[:300], links, full.occupations, full.majors)
    opts = {"model": str(tiny_bert_dir), "cache_dir": str(tmp_path / "cache")}
    tree = build_task_tree(tax, embed_options=opts, mid=20, top=4, augment=1)
    assert tree.vectors.shape[0] == 300 and tree.n_top == 4
    statement = embed(list(tax.task_text), progress=False, **opts)
    from clio_engine.economic.task_tree import AUGMENT_SEED
    rewrite = embed(paraphrase(list(tax.task_text), split="train", seed=AUGMENT_SEED), progress=False, **opts)
    np.testing.assert_allclose(tree.vectors, unit(unit(statement) + unit(rewrite)), atol=1e-5)
    m = map_to_tasks(statement, tree, no_task_floor=None)
    assert m.task.shape == (300,)
    tree.save(tmp_path / "t.npz")
    assert TaskTree.load(tmp_path / "t.npz").model == str(tiny_bert_dir)
    assert list(tree.texts) == list(tax.task_text)

    # Global cache: one file under <cache_dir>/economic; a second build with the same inputs loads it.
    cached = list(tree_cache_dir(opts["cache_dir"]).glob("tree-*.npz"))
    assert len(cached) == 1 and not list(cached[0].parent.glob("*.tmp"))
    marked = TaskTree(tree.vectors, tree.mid, tree.top, tree.mid_centroids, -tree.top_centroids, tree.model, tree.texts)
    marked.save(cached[0])  # a valid file with the same vectors: only a build that reads the cache returns it
    again = build_task_tree(tax, embed_options=opts, mid=20, top=4, augment=1)
    np.testing.assert_array_equal(again.top_centroids, -tree.top_centroids)
    other = build_task_tree(tax, embed_options=opts, mid=21, top=4, augment=1)  # other settings: another key
    assert len(list(cached[0].parent.glob("tree-*.npz"))) == 2 and other.n_mid <= 21
    cached[0].write_bytes(b"not a zip file at all")  # a torn / corrupt file is rebuilt, not trusted
    rebuilt = build_task_tree(tax, embed_options=opts, mid=20, top=4, augment=1)
    for name in ("vectors", "mid", "top", "mid_centroids", "top_centroids"):
        np.testing.assert_array_equal(getattr(rebuilt, name), getattr(tree, name))
    np.testing.assert_array_equal(TaskTree.load(cached[0]).top_centroids, tree.top_centroids)  # rewritten


@pytest.mark.slow
@pytest.mark.quality
def test_default_model_maps_heldout_paraphrases(data_dir, tmp_path_factory):
    """Held-out request paraphrases of 300 random tasks map back to their SOC major group and task, with
    the default build (474 / 12 nodes, 2 rewrites per task), by embedding alone and hybrid (with texts).
    On 2,000 tasks (benchmarks/economic_mapping.py): embedding major 80.7 %, task 71.6 %; hybrid major
    86.9 %, task 81.0 %. Cold cache: ~1 min on 2 idle cores (21 s statements, 35 s rewrites + k-means);
    the second build reads the shared tree cache (a few seconds: the embeddings are cached too)."""
    from clio_engine.economic.onet import load_taxonomy
    from clio_engine.economic.paraphrase import paraphrase
    from clio_engine.embed import embed

    tax = load_taxonomy()
    # The shared cache, as the pipeline uses it: the tree built here is the one the end-to-end tests read.
    opts = {"model": "default", "progress": False}
    t0 = time.perf_counter()
    tree = build_task_tree(tax, embed_options=opts)
    print(f"tree build {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    again = build_task_tree(tax, embed_options=opts)
    print(f"second build (cached tree) {time.perf_counter() - t0:.1f} s")
    np.testing.assert_array_equal(again.mid, tree.mid)
    np.testing.assert_array_equal(again.top_centroids, tree.top_centroids)
    path = tmp_path_factory.mktemp("econ_tree") / "tree.npz"
    tree.save(path)
    back = TaskTree.load(path)
    for name in ("vectors", "mid", "top", "mid_centroids", "top_centroids"):
        np.testing.assert_array_equal(getattr(back, name), getattr(tree, name))
    assert (back.n_mid, back.n_top) == (474, 12)
    rng = np.random.default_rng(1)
    truth = rng.choice(tax.n_tasks, 300, replace=False)
    texts = paraphrase(list(tax.task_text[truth]), split="heldout", seed=1)
    x = embed(texts, **opts)
    occ_major = tax.occupations.major.to_numpy()
    majors = tax.links.groupby("task").occupation.apply(lambda s: set(occ_major[s])).to_dict()
    ok = {}
    for label, given in (("embedding", None), ("hybrid", texts)):
        m = map_to_tasks(x, back, no_task_floor=None, texts=given)
        ok[label] = (np.mean([bool(majors[p] & majors[t]) for p, t in zip(m.task, truth)]), np.mean(m.task == truth))
        print(f"{label}: major {ok[label][0]:.3f} task {ok[label][1]:.3f}")
    # Thresholds a few points under the 2,000-task rates (300 tasks: ±2.3 points of sampling noise at 1 sd).
    # Embedding alone stays below the 0.85 aimed for; the hybrid score reaches it on 2,000 tasks (86.9 %).
    assert ok["embedding"][0] >= 0.74 and ok["embedding"][1] >= 0.62   # chance is 1 / 17,976
    assert ok["hybrid"][0] >= 0.81 and ok["hybrid"][1] >= 0.74
    assert ok["hybrid"][1] > ok["embedding"][1]  # the lexical part adds right tasks, not only noise


def map_with_fake_llm(tree, x, texts, task_texts, responder, tmp_path):
    """(the LLM chooser, its mapping of x with 3 candidates, the user prompts sent) against the fake OpenAI
    server answering with `responder(system, prompt, body)`."""
    from clio_engine.config import load_config
    from clio_engine.economic.mapping import llm_chooser
    from clio_engine.llm.session import llm_session
    from tests.fake_llm_servers import FakeServer

    with FakeServer("openai") as srv:
        srv.responder = responder
        cfg = load_config(None, {"llm.backend": "openai", "llm.model": "fake", "llm.base_url": srv.url + "/v1",
                                 "llm.progress": False, "llm.backoff_s": 0.0})
        with llm_session(tmp_path / "llm"):
            chooser = llm_chooser(cfg, texts, tree, task_texts)
            got = map_to_tasks(x, tree, candidates=3, no_task_floor=None, chooser=chooser)
        prompts = [m["content"] for b in srv.bodies for m in b["messages"] if m["role"] == "user"]
    return chooser, got, prompts


def test_llm_screen_sets_aside_records_the_model_calls_not_work(tree, tmp_path):
    """At the top level the LLM may answer the extra last option ("not about any job"): those records get
    no occupational task whatever their similarity, and are never asked about the lower levels."""
    pytest.importorskip("openai", reason="the openai SDK is not installed (pip install 'clio-engine[llm]')")
    x, _ = planted(tree, n=10, noise=0.3, seed=9)
    texts = [("a cake recipe " if i % 3 == 0 else "work request ") + str(i) for i in range(len(x))]
    task_texts = [f"statement {t}" for t in range(tree.n_tasks)]

    def answer(system, prompt, body):
        options = [line for line in prompt.splitlines() if line[:1].isdigit()]
        if "cake recipe" in prompt and options[-1].endswith(NOT_WORK_OPTION):
            return str(len(options))
        return "1"

    chooser, got, prompts = map_with_fake_llm(tree, x, texts, task_texts, answer, tmp_path)
    screened = np.arange(len(x)) % 3 == 0
    plain = map_to_tasks(x, tree, candidates=3, no_task_floor=None)
    assert (got.task[screened] == -1).all() and (got.task[~screened] == plain.task[~screened]).all()
    assert chooser.not_work == screened.sum() == got.chooser_calls["not_work"]
    assert not any("cake recipe" in p and "Which work task" in p for p in prompts)  # not asked further down
    assert all(NOT_WORK_OPTION not in p for p in prompts if "group of work tasks" not in p)


def test_llm_chooser_through_fake_openai_server(tree, tmp_path):
    """`llm_chooser` asks one numbered question per record and level; an unusable answer keeps the
    embedding's choice and is counted. The fake server answers "2" unless the request says "broken"."""
    pytest.importorskip("openai", reason="the openai SDK is not installed (pip install 'clio-engine[llm]')")
    x, _ = planted(tree, n=12, noise=0.6, seed=7)
    texts = ["broken request"] + [f"request number {i}" for i in range(1, len(x))]
    task_texts = [f"statement {t}" for t in range(tree.n_tasks)]

    def expected(level, records, candidates):  # what the fake LLM's answers mean, as positions
        width = (candidates >= 0).sum(axis=1)
        return np.where((records == 0) | (width < 2), 0, 1)

    chooser, got, prompts = map_with_fake_llm(
        tree, x, texts, task_texts, lambda system, prompt, body: "no idea" if "broken" in prompt else "Option 2.",
        tmp_path)
    want = map_to_tasks(x, tree, candidates=3, no_task_floor=None, chooser=expected)
    np.testing.assert_array_equal(got.task, want.task)
    assert (got.task != map_to_tasks(x, tree, candidates=3, no_task_floor=None).task).any()
    assert chooser.fallbacks["count"] >= 3  # the broken record at each of the three levels (+ one-option lists)
    described = {" / ".join(f"statement {t}" for t in ex)
                 for level in ("top", "mid") for ex in tree.node_examples(level, 3)}
    group_prompts = [p for p in prompts if "group of work tasks" in p]
    assert len(group_prompts) >= 2 * len(x)
    for p in group_prompts:  # every option is a node shown by its (up to) 3 tasks nearest its centroid
        options = [line.split(". ", 1)[1] for line in p.splitlines() if line[:1].isdigit()]
        options = [o for o in options if o != NOT_WORK_OPTION]  # the top level's screen option
        assert options and set(options) <= described, p
    task_prompt = next(p for p in prompts if "request number 1\n" in p and "Which work task" in p)
    assert task_prompt.count("\n1. statement ") == 1
