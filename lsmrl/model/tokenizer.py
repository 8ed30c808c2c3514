"""A word-level tokenizer for the miniature CLIP (design.md §3, [our choice]).

CLIP's BPE vocabulary has 49,408 tokens; its embedding table alone would be
larger than the whole miniature model, and SynthVVI captions use about a
hundred words. The miniature CLIP therefore uses a closed word vocabulary,
stored with the model (in the checkpoint's JSON sidecar), with the same call
convention as open_clip's tokenizers: ``tokenizer(texts) -> LongTensor (N, L)``.

Ids: 0 = padding, 1 = unknown word, 2 = start of text, then the words, and the
end-of-text token is the **highest id** in the table, so open_clip's ``argmax``
text pooling finds it exactly as it does for CLIP's BPE tokenizer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import torch

PAD, UNK, SOT = "<pad>", "<unk>", "<sot>"
EOT = "<eot>"

# Words of the prompt templates; always in the vocabulary so that the prompt
# learner can build "a photo of a X X X X person." without unknown tokens.
TEMPLATE_WORDS = (
    "a", "an", "photo", "of", "x", "person", "observed", "in", "both", "day", "and",
    "night", "conditions", "the", "with", "without", "wearing", "visible", "infrared",
)

_WORD = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")


def split_words(text: str) -> list[str]:
    """Lower-case words and punctuation marks, in order (punctuation is a token of its own)."""
    return _WORD.findall(text.lower())


class WordTokenizer:
    """Closed-vocabulary word tokenizer with open_clip's call convention."""

    def __init__(self, words: Sequence[str], vocab_size: int, context_length: int):
        specials = {PAD, UNK, SOT, EOT}
        unique = []
        for word in words:
            if word not in specials and word not in unique:
                unique.append(word)
        if len(unique) + 4 > vocab_size:
            raise ValueError(
                f"{len(unique)} words do not fit a vocabulary of {vocab_size} ids "
                f"(4 are reserved); raise text_cfg.vocab_size"
            )
        self.words = tuple(unique)
        self.vocab_size = vocab_size
        self.context_length = context_length
        self.pad_id, self.unk_id, self.sot_id = 0, 1, 2
        self.eot_id = vocab_size - 1
        self._ids = {word: 3 + i for i, word in enumerate(self.words)}

    @classmethod
    def from_texts(cls, texts: Iterable[str], vocab_size: int, context_length: int) -> "WordTokenizer":
        """Build the vocabulary from template words plus every word of ``texts`` (sorted: deterministic)."""
        seen = set(TEMPLATE_WORDS)
        for text in texts:
            seen.update(split_words(text))
        ordered = list(TEMPLATE_WORDS) + sorted(seen - set(TEMPLATE_WORDS))
        return cls(ordered, vocab_size, context_length)

    def encode(self, text: str) -> list[int]:
        return [self._ids.get(word, self.unk_id) for word in split_words(text)]

    def unknown_words(self, text: str) -> list[str]:
        return [word for word in split_words(text) if word not in self._ids]

    def __call__(self, texts: str | Sequence[str], context_length: int | None = None) -> torch.Tensor:
        if isinstance(texts, str):
            texts = [texts]
        length = context_length or self.context_length
        out = torch.full((len(texts), length), self.pad_id, dtype=torch.long)
        for row, text in enumerate(texts):
            ids = [self.sot_id] + self.encode(text)[: length - 2] + [self.eot_id]
            out[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        return out

    def to_config(self) -> dict:
        return {"type": "word", "words": list(self.words), "vocab_size": self.vocab_size,
                "context_length": self.context_length}
