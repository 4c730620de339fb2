"""One process of a distributed ``vlm train`` run (started by test_distributed): train, then record its weights.

Usage: ``accelerate launch ... tests/training/_distributed_worker.py RECIPE OUTPUT_DIR``. Writes
``OUTPUT_DIR/weights-rank<N>.json`` with a SHA-256 of every parameter and buffer of the unwrapped model.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from training.recipe import load_recipe
from training.train import close_process_group, train


def main(recipe_path: str, output_dir: str) -> None:
    """Train with the recipe and write this rank's weight checksum."""
    result = train(load_recipe(recipe_path), output_dir=output_dir)
    model = result.trainer.accelerator.unwrap_model(result.trainer.model)
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    args = result.trainer.args
    record = {"rank": args.process_index, "world_size": args.world_size, "sha256": digest.hexdigest()}
    Path(output_dir, f"weights-rank{args.process_index}.json").write_text(json.dumps(record))
    close_process_group()  # as `vlm train` ends


if __name__ == "__main__":
    main(*sys.argv[1:3])
