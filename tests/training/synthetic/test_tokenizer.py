"""The offline tokenizer: special ids, lossless round trips, atomic extra tokens, digits split, save and reload."""

from __future__ import annotations

from pathlib import Path

import datasets
import pytest
from transformers import PreTrainedTokenizerFast

from training.synthetic.shapes import SyntheticShapesConfig, build_synthetic_dataset
from training.synthetic.tokenizer import synthetic_corpus, train_synthetic_tokenizer

EXTRA_TOKENS = ("<image>", "###", "&&", "<|user|>", "<|assistant|>")


@pytest.fixture(scope="module")
def dataset() -> datasets.Dataset:
    return build_synthetic_dataset(24, seed=7, config=SyntheticShapesConfig(image_size=32))


@pytest.fixture(scope="module")
def tokenizer(dataset: datasets.Dataset) -> PreTrainedTokenizerFast:
    return train_synthetic_tokenizer(synthetic_corpus(dataset), extra_tokens=EXTRA_TOKENS, vocab_size=400)


def test_corpus_contains_prompts_and_answers(dataset: datasets.Dataset) -> None:
    corpus = list(synthetic_corpus(dataset))
    assert corpus[0::2] == dataset["prompt"] and corpus[1::2] == dataset["answer"]


def test_tokenizer_special_ids(tokenizer: PreTrainedTokenizerFast) -> None:
    assert tokenizer.convert_tokens_to_ids("<|endoftext|>") == 0
    assert tokenizer.eos_token_id == tokenizer.pad_token_id == tokenizer.bos_token_id == tokenizer.unk_token_id == 0
    assert tokenizer.model_max_length >= 4096
    assert len(tokenizer) <= 400
    # No BOS/EOS is added automatically, as in GPT-NeoX.
    assert 0 not in tokenizer("A small red circle.")["input_ids"]


def test_tokenizer_roundtrip(tokenizer: PreTrainedTokenizerFast, dataset: datasets.Dataset) -> None:
    for text in [*synthetic_corpus(dataset), "[0.12,0.34,0.56,0.78]", "[1.00,0.05,0.99,0.10]", "0123456789"]:
        assert tokenizer.decode(tokenizer.encode(text)) == text


def test_tokenizer_digits_are_separate_tokens(tokenizer: PreTrainedTokenizerFast) -> None:
    ids = tokenizer.encode("[0.12,0.34]")
    assert tokenizer.convert_ids_to_tokens(ids) == ["[", "0", ".", "1", "2", ",", "0", ".", "3", "4", "]"]


def test_tokenizer_extra_tokens_are_atomic(tokenizer: PreTrainedTokenizerFast) -> None:
    ids = {tok: tokenizer.convert_tokens_to_ids(tok) for tok in EXTRA_TOKENS}
    assert len(set(ids.values())) == len(EXTRA_TOKENS) and 0 not in ids.values()
    for tok, tok_id in ids.items():
        assert tokenizer.encode(tok) == [tok_id]
        # Glued to arbitrary neighbours it still maps to exactly one id.
        for text in (f"x{tok}y", f"{tok}\nQuestion", f"Answer:{tok}{tok}", f"{tok}[0.1"):
            encoded = tokenizer.encode(text)
            assert encoded.count(tok_id) == text.count(tok)
            assert tokenizer.decode(encoded) == text
    prompt = "<|user|><image>\nProvide a caption.###<|assistant|>A red circle.&&<|endoftext|>"
    assert tokenizer.decode(tokenizer.encode(prompt)) == prompt
    assert set(EXTRA_TOKENS) <= set(tokenizer.all_special_tokens)
    assert tokenizer.decode(tokenizer.encode(prompt), skip_special_tokens=True) == "\nProvide a caption.A red circle."


def test_tokenizer_deterministic(dataset: datasets.Dataset, tokenizer: PreTrainedTokenizerFast) -> None:
    again = train_synthetic_tokenizer(synthetic_corpus(dataset), extra_tokens=EXTRA_TOKENS, vocab_size=400)
    assert again.get_vocab() == tokenizer.get_vocab()


def test_tokenizer_save_load(tmp_path: Path, tokenizer: PreTrainedTokenizerFast) -> None:
    from transformers import AutoTokenizer

    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    text = "<image>\nLocate the region that is described by:\nthe red circle.[0.12,0.34,0.56,0.78]"
    assert loaded.encode(text) == tokenizer.encode(text)
    assert loaded.pad_token_id == 0
