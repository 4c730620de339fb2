"""Everything generated offline: scenes, tasks, the retrieval probe's examples, and the tokenizer trained on them.

- :mod:`.shapes`: shapes scenes and their captioning, short-VQA and grounding rows;
- :mod:`.tasks`: reading, counting, multiple-choice and in-context retrieval rows;
- :mod:`.rows`: the schema every row shares, so the tasks mix in one dataset;
- :mod:`.scoring`: one scorer for all seven tasks, per-task scores of a dataset, the image-blind baseline;
- :mod:`.retrieval`: the in-context retrieval probe's symbol sequences and glyph grids;
- :mod:`.tokenizer`: the small byte-level BPE tokenizer trained on a run's own texts.

Everything is a pure function of its seed and index: the same seed always gives identical rows and pixels.
"""
