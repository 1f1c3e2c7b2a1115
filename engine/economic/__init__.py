"""The Economic Index layer (SPEC §12): usage mapped onto O*NET tasks and occupations, collaboration modes,
geography with the AI Usage Index, concentration, and runs compared over time.

Modules, one job each:
- `onet`: the O*NET 26.3 task statements and the SOC 2018 structure, shipped as package data (`Taxonomy`).
- `task_tree`: a semantic tree over the unique task statements, built with the engine's own hierarchy.
- `mapping`: records → task (top-down over the semantic tree; an LLM picks per level where configured),
  with a "no occupational task" screen and a confidence.
- `paraphrase`, `synthetic`: a synthetic economy written from task statements (never verbatim) with known
  task, collaboration mode, user and country, for tests and `clio-engine demo --economic`.
- `geography`: the shipped country table (World Bank population and GDP, ISO 3166 codes).
- `concentration`: rank–share slope, Gini and bottom-80% share of task usage.
- `inputs`: the records frame as the tables read it (checked user/task columns, modes, cleaned codes).
- `cells`: records and distinct users per table part, and the secondary suppression that hides parts.
- `aggregates`: every published economic number as rows of the Index's long layout, through the floors.
- `compare`: share changes between two runs with user-level bootstrap intervals.
- `figures`: the report's figures.

Attribution: this package includes information from the O*NET 26.3 Database by the U.S. Department of
Labor, Employment and Training Administration (USDOL/ETA), used under the CC BY 4.0 license; population
and GDP are World Bank data (SP.POP.TOTL, NY.GDP.MKTP.CD; ODC-PDDL-1.0). See data/NOTICE.
"""
