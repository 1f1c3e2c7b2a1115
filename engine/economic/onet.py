"""The O*NET task taxonomy shipped with the package: unique task statements, the occupations that list
each one (a task shared by k occupations gives each 1/k of its count), and the SOC 2018 tree above them.

    from clio_engine.economic.onet import load_taxonomy
    tax = load_taxonomy()
    tax.task_text[0], tax.occupations_of(0), tax.task_major[0]

The official tree is SOC major group → minor group → broad occupation → occupation (O*NET-SOC code) →
task statement. Task indexes (0..T-1) number the unique statement texts in file order; `task_ids` keeps
the O*NET Task IDs behind each (one per occupation that lists it).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd

NO_TASK = -1  # a record with no occupational task
ATTRIBUTION = ("This product includes information from the O*NET 26.3 Database by the U.S. Department of Labor, "
               "Employment and Training Administration (USDOL/ETA). Used under the CC BY 4.0 license.")


def data_file(name: str):
    """A Traversable for one of the package's data files (works from a wheel or a checkout)."""
    return resources.files("clio_engine.economic") / "data" / name


@dataclass(frozen=True)
class Taxonomy:
    """The O*NET task taxonomy as flat arrays.

    task_text [T] str: unique task statements. task_major [T] int: index into `majors` of the task's
    SOC major group (a shared task takes its first occupation's group). links: one row per
    (task, occupation) with columns task, occupation (index into `occupations`), weight (1 / number of
    occupations listing the task), task_id (O*NET Task ID). occupations: soc_code, title, soc_major_code,
    soc_major, soc_minor_code, soc_minor, soc_broad_code, soc_broad, major (index into majors), n_tasks.
    majors: soc_major_code, title.
    """

    task_text: np.ndarray
    task_major: np.ndarray
    links: pd.DataFrame
    occupations: pd.DataFrame
    majors: pd.DataFrame

    @property
    def n_tasks(self) -> int:
        return len(self.task_text)

    def occupations_of(self, task: int) -> list[str]:
        """SOC codes of the occupations listing task `task`."""
        rows = self.links.occupation[self.links.task == task]
        return self.occupations.soc_code.to_numpy()[rows.to_numpy()].tolist()

    def occupation_weights(self, tasks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Equal split of records over occupations: for tasks [N] (−1 ignored) returns (record [M],
        occupation [M], weight [M]) with the weights of each record summing to 1."""
        tasks = np.asarray(tasks, dtype=np.int64)
        order = np.argsort(self.links.task.to_numpy(), kind="stable")
        link_task = self.links.task.to_numpy()[order]
        start = np.searchsorted(link_task, np.arange(self.n_tasks))
        count = np.bincount(link_task, minlength=self.n_tasks)
        rec = np.flatnonzero(tasks >= 0)
        reps = count[tasks[rec]]
        record = np.repeat(rec, reps)
        offset = np.arange(reps.sum()) - np.repeat(np.cumsum(reps) - reps, reps)
        link = order[np.repeat(start[tasks[rec]], reps) + offset]
        return record, self.links.occupation.to_numpy()[link], self.links.weight.to_numpy()[link]


@lru_cache(maxsize=1)
def load_taxonomy() -> Taxonomy:
    """The shipped taxonomy (O*NET 26.3 task statements, SOC 2018 groups); cached per process."""
    with data_file("onet_task_statements.csv.gz").open("rb") as fh:
        raw = pd.read_csv(fh, compression="gzip", dtype=str, keep_default_na=False)
    occ_cols = ["soc_code", "occupation", "soc_major_code", "soc_major", "soc_minor_code", "soc_minor",
                "soc_broad_code", "soc_broad"]
    occupations = raw[occ_cols].drop_duplicates("soc_code").rename(columns={"occupation": "title"})
    occupations = occupations.sort_values("soc_code").reset_index(drop=True)
    majors = (occupations[["soc_major_code", "soc_major"]].drop_duplicates().sort_values("soc_major_code")
              .rename(columns={"soc_major": "title"}).reset_index(drop=True))
    occupations["major"] = pd.Index(majors.soc_major_code).get_indexer(occupations.soc_major_code)
    occupations["n_tasks"] = raw.groupby("soc_code").task.nunique().reindex(occupations.soc_code).to_numpy()

    text, task_of_row = np.unique(raw.task.to_numpy(), return_inverse=True)
    first = pd.Series(np.arange(len(raw))).groupby(task_of_row).min().to_numpy()
    order = np.argsort(first)  # number unique statements in file order, so indexes follow O*NET's listing
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    task = rank[task_of_row]
    occ_index = pd.Index(occupations.soc_code).get_indexer(raw.soc_code)
    links = pd.DataFrame({"task": task, "occupation": occ_index, "task_id": raw.task_id.to_numpy()})
    links = links.drop_duplicates(["task", "occupation"]).sort_values(["task", "occupation"]).reset_index(drop=True)
    links["weight"] = 1.0 / links.groupby("task").occupation.transform("size").to_numpy()
    first_occ = links.drop_duplicates("task").set_index("task").occupation.sort_index().to_numpy()
    task_major = occupations.major.to_numpy()[first_occ].astype(np.int64)
    return Taxonomy(text[order].astype(object), task_major, links, occupations, majors)


def load_soc_structure() -> pd.DataFrame:
    """The SOC 2018 structure: soc_code, title, level (Major / Minor / Broad / Detailed), parent."""
    with data_file("soc2018_structure.csv.gz").open("rb") as fh:
        return pd.read_csv(fh, compression="gzip", dtype=str, keep_default_na=False)
