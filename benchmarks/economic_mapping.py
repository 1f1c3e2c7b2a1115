"""Task mapping quality and speed (engine/economic/mapping.py) with the default model, no LLM.

- held-out paraphrases: `paraphrase(statement, split="heldout", seed=1)` of `--n` random task statements,
  mapped back; right at SOC major group (the chosen task's occupations share a major group with the true
  task's), occupation (the chosen task is listed by an occupation of the true task) and task (exact),
  printed beside the Economic Index's human "acceptable" rates (95.3 / 91.3 / 86 %, top / middle / base
  of its own tree: a different question, shown for scale only);
- DWA titles (O*NET detailed work activities): right when mapped to any task linked to the DWA (major:
  to a task sharing a major group with any linked task);
- "hybrid" rows: the records' texts given too (`texts=`), score = cosine + LEXICAL_WEIGHT × TF-IDF cosine;
- the no-task screen (DEFAULT_FLOOR on the cosine, DEFAULT_HYBRID_FLOOR on the hybrid score): share of
  hwu64 test texts and of the synthetic economy's personal texts (`generate_economy(5000, seed=3)`,
  task −1) screened out vs share of held-out paraphrases and synthetic work texts kept;
- `--scale N`: seconds to map N random unit vectors (after embedding), top-down and flat, and hybrid with
  N paraphrase texts (the lexical part's time included);
- `--calibrate`: LEXICAL_WEIGHT on train paraphrases (grid), the floors maximising balanced accuracy on
  train texts (hwu64 + MASSIVE en-US train split vs train paraphrases) and the confidence temperature
  (minimum log loss), to set the module constants.

The tree's vectors are the default build's (statement + 2 train-template rewrites per task); a flat run
on the statement vectors alone shows what the rewrites add. Top-down (candidates 5) and flat are both reported; without a chooser they agree by construction (a node
scores its best task), so any difference is bf16 rounding in the node scores.

    PYTHONPATH=. python -m benchmarks.economic_mapping --n 2000 [--scale 100000] [--calibrate]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from clio_engine.economic import mapping as mp
from clio_engine.economic.onet import load_taxonomy
from clio_engine.economic.paraphrase import paraphrase
from clio_engine.economic.task_tree import TaskTree, build_task_tree
from clio_engine.embed import embed

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
INDEX_ACCEPTABLE = {"major": 95.3, "occupation": 91.3, "task": 86.0}  # top / middle / base in the Index


def task_sets(tax):
    """(occupations per task, majors per task) as lists of frozensets."""
    occ_major = tax.occupations.major.to_numpy()
    occs = tax.links.groupby("task").occupation.apply(frozenset).reindex(range(tax.n_tasks)).tolist()
    majors = [frozenset(int(occ_major[o]) for o in s) for s in occs]
    return occs, majors


def accuracy(pred: np.ndarray, true_sets: list[set], members: list[frozenset]) -> float:
    """% of records whose predicted task's set meets the record's set of right answers."""
    hits = [p >= 0 and bool(members[p] & s) for p, s in zip(pred, true_sets)]
    return 100.0 * float(np.mean(hits))


def markdown(table: pd.DataFrame) -> str:
    """A markdown table (numbers to one decimal) without the optional `tabulate` package."""
    cells = [[f"{v:.1f}" if isinstance(v, float) else str(v) for v in row] for row in table.itertuples(index=False)]
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])


def statement_tree(tax, emb) -> TaskTree:
    """The statement vectors alone (no rewrites) in a one-node tree: for flat mapping only."""
    statements = emb(tax.task_text)
    return TaskTree(statements, np.zeros(tax.n_tasks, np.int64), np.zeros(1, np.int64),
                    statements.mean(0, keepdims=True), statements.mean(0, keepdims=True),
                    texts=np.asarray(tax.task_text, dtype=object))


def choose_weight(tree, tax, emb) -> None:
    """LEXICAL_WEIGHT: SOC-major accuracy of flat hybrid mapping of 3,000 TRAIN paraphrases per weight."""
    occs, majors = task_sets(tax)
    rng = np.random.default_rng(0)
    truth = rng.choice(tax.n_tasks, 3000, replace=False)
    texts = paraphrase(list(tax.task_text[truth]), split="train", seed=0)
    x = emb(texts)
    for w in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0):
        m = mp.map_to_tasks(x, tree, candidates=None, no_task_floor=None, texts=texts, lexical_weight=w)
        print(f"  weight {w}: train major {accuracy(m.task, [set(majors[t]) for t in truth], majors):.1f}% "
              f"task {100 * np.mean(m.task == truth):.1f}%")


def calibrate(tree, tax, emb) -> None:
    """Print the balanced-accuracy floor on train texts, twice: against the tree's own vectors, and against
    the statement vectors alone. The first is biased upwards when the tree is augmented: its rewrites use the
    same (train) templates as the calibration's work texts, so those match their tasks unusually well."""
    frames = [pd.read_csv(DATA / f, keep_default_na=False) for f in ("hwu64.csv.gz", "massive_en_us.csv.gz")]
    other = sorted({t for f in frames for t in f.text[f.split == "train"].astype(str) if t.strip()})
    rng = np.random.default_rng(0)
    sample = rng.choice(tax.n_tasks, 5000, replace=False)
    work = paraphrase(list(tax.task_text[sample]), split="train", seed=0)
    x_other, x_work = emb(other), emb(work)
    flat = statement_tree(tax, emb)
    grid = np.round(np.arange(0.10, 0.90, 0.005), 3)
    for label, vectors in (("tree vectors", tree), ("statement vectors", flat)):
        for kind, t_other, t_work in (("cosine", None, None), ("hybrid", other, work)):
            s_other = mp.map_to_tasks(x_other, vectors, candidates=None, no_task_floor=None, texts=t_other).score
            s_work = mp.map_to_tasks(x_work, vectors, candidates=None, no_task_floor=None, texts=t_work).score
            bal = [(np.mean(s_work >= f) + np.mean(s_other < f)) / 2 for f in grid]
            i = int(np.argmax(bal))
            print(f"{kind} floor calibration on {label}: {len(other)} non-work texts, {len(work)} train paraphrases; "
                  f"best floor {grid[i]:.3f}, balanced accuracy {100 * bal[i]:.1f}% (work kept "
                  f"{100 * np.mean(s_work >= grid[i]):.1f}%, non-work screened {100 * np.mean(s_other < grid[i]):.1f}%)")
    # Temperature: softmax over the SHORTLIST nearest tasks; the true task outside it costs log(1e-6).
    sims = torch.from_numpy(x_work) @ torch.from_numpy(tree.vectors).T
    top = torch.topk(sims, mp.SHORTLIST, dim=1)
    is_true = top.indices == torch.from_numpy(sample)[:, None]
    for tau in (0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.07, 0.1):
        p = torch.softmax(top.values / tau, dim=1)
        p_true = (p * is_true).sum(1).clamp(min=1e-6)
        conf = p[:, 0]
        acc = is_true[:, 0].float()
        print(f"  temperature {tau}: log loss {-p_true.log().mean():.3f}, mean confidence {conf.mean():.3f} "
              f"vs top-1 accuracy {acc.mean():.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=2000, help="held-out paraphrases (random tasks)")
    ap.add_argument("--scale", type=int, default=0, help="also time mapping this many random vectors")
    ap.add_argument("--calibrate", action="store_true")
    ap.add_argument("--cache-dir", default=None, help="embedding cache (default: the embedder's)")
    ap.add_argument("--tree", default=None, help="task tree .npz to reuse / write")
    ap.add_argument("--candidates", type=int, nargs="+", default=[1, 5])
    args = ap.parse_args()

    tax = load_taxonomy()
    opts = {"model": "default", "progress": False, **({"cache_dir": args.cache_dir} if args.cache_dir else {})}
    emb = lambda texts: np.asarray(embed(list(texts), **opts), dtype=np.float32)  # noqa: E731
    t0 = time.perf_counter()
    if args.tree and Path(args.tree).is_file():
        tree = TaskTree.load(args.tree)
    else:
        tree = build_task_tree(tax, embed_options=opts)
        if args.tree:
            tree.save(args.tree)
    print(f"task tree: {tree.n_tasks} tasks, {tree.n_mid} middle, {tree.n_top} top nodes ({time.perf_counter() - t0:.1f} s)")
    if args.calibrate:
        choose_weight(tree, tax, emb)
        calibrate(tree, tax, emb)

    occs, majors = task_sets(tax)
    rng = np.random.default_rng(1)
    truth = rng.choice(tax.n_tasks, args.n, replace=False)
    t_para = paraphrase(list(tax.task_text[truth]), split="heldout", seed=1)
    x_para = emb(t_para)

    dwa = pd.read_csv(DATA / "onet_task_to_dwa.csv.gz", dtype=str, keep_default_na=False)
    task_of_id = dict(zip(tax.links.task_id.astype(str), tax.links.task))
    dwa["task"] = dwa.task_id.map(task_of_id)
    dwa = dwa.dropna(subset=["task"])
    by_title = dwa.groupby("dwa_title").task.apply(lambda s: set(int(v) for v in s))
    t_dwa = list(by_title.index)
    x_dwa = emb(t_dwa)
    dwa_major = [set().union(*(majors[t] for t in s)) for s in by_title]

    rows = []
    plain = statement_tree(tax, emb)
    runs = [("flat, statements only", None, plain, False), ("flat", None, tree, False)]
    runs += [(f"top-down c={c}", c, tree, False) for c in args.candidates]
    runs += [("hybrid flat, statements only", None, plain, True), ("hybrid flat", None, tree, True)]
    runs += [(f"hybrid top-down c={c}", c, tree, True) for c in args.candidates]
    for label, cand, used, hybrid in runs:
        t = time.perf_counter()
        m = mp.map_to_tasks(x_para, used, candidates=cand, no_task_floor=None, texts=t_para if hybrid else None)
        secs = time.perf_counter() - t
        d = mp.map_to_tasks(x_dwa, used, candidates=cand, no_task_floor=None, texts=t_dwa if hybrid else None)
        true_major = [set(majors[t]) for t in truth]
        true_occ = [set(occs[t]) for t in truth]
        rows.append({
            "mapping": label,
            "major %": accuracy(m.task, true_major, majors),
            "occupation %": accuracy(m.task, true_occ, occs),
            "task %": 100.0 * float(np.mean(m.task == truth)),
            "DWA major %": accuracy(d.task, dwa_major, majors),
            "DWA task %": 100.0 * float(np.mean([p in s for p, s in zip(d.task, by_title)])),
            "s / 1k records": 1000 * secs / len(x_para),
        })
        if cand is not None and label.endswith("c=5"):
            flat = mp.map_to_tasks(x_para, tree, candidates=None, no_task_floor=None, texts=t_para if hybrid else None)
            print(f"{label} vs flat: same task for {100 * np.mean(flat.task == m.task):.2f}% of records")
            conf, right = m.confidence, m.task == truth
            for lo, hi in ((0, .25), (.25, .5), (.5, .75), (.75, 1.01)):
                sel = (conf >= lo) & (conf < hi)
                if sel.any():
                    print(f"  confidence {lo:.2f}-{min(hi, 1):.2f}: {sel.sum()} records, "
                          f"task accuracy {100 * right[sel].mean():.1f}%")
    table = pd.DataFrame(rows)
    print(f"\nheld-out paraphrases n={args.n}, DWA titles n={len(by_title)}; Economic Index human-acceptable: "
          f"{INDEX_ACCEPTABLE['major']} / {INDEX_ACCEPTABLE['occupation']} / {INDEX_ACCEPTABLE['task']} % "
          "(top / middle / base of its tree)\n")
    print(markdown(table))

    from clio_engine.economic.synthetic import generate_economy

    hwu = pd.read_csv(DATA / "hwu64.csv.gz", keep_default_na=False)
    eco = generate_economy(5000, seed=3)
    sets = {"hwu64 test": (list(hwu.text[hwu.split == "test"].astype(str)), "screened out", True),
            "synthetic personal (task -1)": (list(eco.text[eco.task == mp.NO_TASK]), "screened out", True),
            "held-out paraphrases": (t_para, "kept", False),
            "synthetic work": (list(eco.text[eco.task != mp.NO_TASK]), "kept", False)}
    print()
    for name, (texts, verb, non_work) in sets.items():
        x = x_para if texts is t_para else emb(texts)
        cos = np.mean(mp.map_to_tasks(x, tree).task == mp.NO_TASK)
        hyb = np.mean(mp.map_to_tasks(x, tree, texts=texts).task == mp.NO_TASK)
        rate = (lambda v: v) if non_work else (lambda v: 1 - v)
        print(f"no-task screen, {name} ({len(texts)} texts) {verb}: cosine floor {mp.DEFAULT_FLOOR} "
              f"{100 * rate(cos):.1f}%, hybrid floor {mp.DEFAULT_HYBRID_FLOOR} {100 * rate(hyb):.1f}%")

    if args.scale:
        g = torch.Generator().manual_seed(0)
        x = torch.nn.functional.normalize(torch.randn(args.scale, tree.dim, generator=g), dim=1).numpy()
        picks = np.random.default_rng(0).integers(tax.n_tasks, size=args.scale)
        texts = paraphrase(list(tax.task_text[picks]), split="heldout", seed=2)
        for label, cand, hybrid in (("top-down c=5", 5, False), ("flat", None, False),
                                    ("hybrid top-down c=5", 5, True), ("hybrid flat", None, True)):
            t = time.perf_counter()
            mp.map_to_tasks(x, tree, candidates=cand, texts=texts if hybrid else None)
            print(f"scale: {args.scale:,} random vectors × {tree.n_tasks:,} tasks, {label}: "
                  f"{time.perf_counter() - t:.1f} s ({torch.get_num_threads()} threads)")


if __name__ == "__main__":
    main()
