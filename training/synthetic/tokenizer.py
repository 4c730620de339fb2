"""The tokenizer of the offline runs: a small GPT-NeoX-style byte-level BPE trained on the run's own texts."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import datasets
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

__all__ = ["synthetic_corpus", "train_synthetic_tokenizer"]

_EOS = "<|endoftext|>"


def synthetic_corpus(dataset: datasets.Dataset) -> Iterator[str]:
    """Yield every prompt and answer string of the dataset (e.g. to train a tokenizer)."""
    # Select only text columns so that images are never decoded.
    text = dataset.select_columns(["prompt", "answer"])
    for row in text:
        yield row["prompt"]
        yield row["answer"]


def train_synthetic_tokenizer(
    corpus: Iterable[str], extra_tokens: Sequence[str] = (), vocab_size: int = 512
) -> PreTrainedTokenizerFast:
    """Train a small GPT-NeoX-style byte-level BPE tokenizer on ``corpus`` (``<|endoftext|>`` = id 0)."""
    extra = [t for t in dict.fromkeys(extra_tokens) if t != _EOS]
    special = [_EOS, *extra]
    tokenizer = Tokenizer(models.BPE())
    # Digits are split individually so box coordinates get a consistent, compositional tokenization;
    # byte-level encoding then guarantees a lossless roundtrip for any string.
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tokenizer.decoder = decoders.ByteLevel()
    # Registering the specials before training makes the trainer split them out of the corpus, so no merge
    # ever glues them to neighbouring text; listing them first in the trainer gives <|endoftext|> id 0.
    tokenizer.add_special_tokens(special)
    trainer = trainers.BpeTrainer(
        vocab_size=max(vocab_size, 256 + len(special)),
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=_EOS,
        eos_token=_EOS,
        unk_token=_EOS,
        pad_token=_EOS,
        extra_special_tokens=extra,
        model_max_length=4096,
        # The default cleanup would rewrite e.g. " ." and break the exact roundtrip required for answers.
        clean_up_tokenization_spaces=False,
    )
