"""Text tokenisation as the official model does it, with the `tokenizers` library directly."""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer, pre_tokenizers


def _is_cjk(text: str) -> bool:
    return all("\u4e00" <= ch <= "\u9fff" for ch in text)


class TextTokenizer:
    """Llama-style tokenizer.json, no BOS; tokens made of several Chinese characters are split
    into single characters (the model was trained on character-level Chinese)."""

    def __init__(self, path: Path) -> None:
        self._tokenizer = Tokenizer.from_file(str(path))
        if isinstance(self._tokenizer.pre_tokenizer, pre_tokenizers.Metaspace):
            # What transformers' LlamaTokenizerFast (which upstream loads) installs: one leading
            # U+2581 and no splitting at spaces, whatever tokenizer.json says.
            self._tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=False)
        vocab = self._tokenizer.get_vocab()
        self._multichar = {token for token in vocab if len(token) >= 2 and _is_cjk(token)}
        self._unk = self._tokenizer.token_to_id("<unk>")

    def __call__(self, text: str) -> list[int]:
        ids: list[int] = []
        for token, token_id in zip(*self._encode(text)):
            bare = token.replace("\u2581", "")
            if bare in self._multichar:
                ids.extend(self._id(ch) for ch in bare)
            else:
                ids.append(token_id)
        return ids

    def _encode(self, text: str) -> tuple[list[str], list[int]]:
        encoding = self._tokenizer.encode(text, add_special_tokens=False)
        return encoding.tokens, encoding.ids

    def _id(self, token: str) -> int:
        token_id = self._tokenizer.token_to_id(token)
        if token_id is None:
            return self._unk if self._unk is not None else 0
        return token_id
