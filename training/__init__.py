"""Everything around the models: training runs, evaluation, generated data, the demo, the bench, the ``vlm`` command.

One home per job:

- runs: :mod:`.recipe` (the recipe file), :mod:`.data` (readers, datasets, a recipe's sources), :mod:`.collator`,
  :mod:`.model_loading`, :mod:`.lora`, :mod:`.trainer`, :mod:`.checkpoints` and :mod:`.train` (``vlm train``);
- :mod:`.templates`: the paper's prompt templates and box format, for training, evaluation and generated data alike;
- :mod:`.eval`: all evaluation: metrics, benchmarks, generation, ``vlm eval``, the paper's table, ``vlm compare``;
- :mod:`.synthetic`: all generated data: scenes, tasks, the retrieval probe's examples, their scorer and tokenizer;
- :mod:`.demo`, :mod:`.bench`, :mod:`.probes`: ``vlm demo``, ``vlm bench``, ``vlm probe``, with :mod:`.short_runs`
  (small matched models, short Trainer runs) and :mod:`.plots` shared between them;
- :mod:`.cli`: the ``vlm`` command, which only parses and dispatches.
"""
