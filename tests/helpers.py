"""Small builders shared by the tests (tiny random-init models; no data set needed)."""

from __future__ import annotations

from lsmrl.model.lsmrl import LSMRL, LSMRLConfig
from lsmrl.model.tokenizer import WordTokenizer

TINY_WORDS = ["a red striped top", "a person with a backpack", "dark trousers"]


def tiny_tokenizer_config() -> dict:
    return WordTokenizer.from_texts(TINY_WORDS, vocab_size=512, context_length=32).to_config()


def tiny_config(**overrides) -> LSMRLConfig:
    """The miniature CLIP at 128x64 with 8 identities (random init)."""
    values = dict(num_classes=8, num_frames=4, tokenizer=tiny_tokenizer_config())
    values.update(overrides)
    return LSMRLConfig(**values)


def tiny_model(**overrides) -> LSMRL:
    model = LSMRL(tiny_config(**overrides))
    model.refresh_prompt_bank()
    return model
