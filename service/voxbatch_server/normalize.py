"""Text normalisation: numbers, dates, times, currencies, units and abbreviations spelt out as
they are read aloud, in English and Chinese, by WeTextProcessing's runtime (`wetext`, the
normaliser upstream VoxCPM uses), whose grammars ship inside the package (nothing is downloaded).

Each sentence is normalised with the grammar of its main script: Chinese characters pick the
Chinese grammar, anything else the English one. Normalisation is best effort: a sentence the
grammar cannot parse is spoken as written (and logged), never refused."""

from __future__ import annotations

import logging
import threading

from .languages import letter_scripts

log = logging.getLogger(__name__)


class TextNormalizer:
    def __init__(self) -> None:
        self._normalizers: dict[str, object] = {}
        self._lock = threading.Lock()  # the FST runtime is not documented as thread-safe

    def normalize(self, text: str) -> str:
        language = self.language_of(text)
        with self._lock:
            normalizer = self._normalizers.get(language)
            if normalizer is None:
                from wetext import Normalizer

                normalizer = self._normalizers[language] = Normalizer(lang=language, operator="tn")
            try:
                spoken = normalizer.normalize(text)
            except Exception as error:  # noqa: BLE001 - the grammar's failure is not the request's
                log.warning("text normalisation (%s) failed on %r (%s: %s); speaking it as written",
                            language, text[:60], type(error).__name__, error)
                return text
        return spoken if spoken.strip() else text

    @staticmethod
    def language_of(text: str) -> str:
        # A Chinese character is a word or a syllable, an English letter much less: a third of
        # the letters in Chinese characters makes a Chinese sentence.
        counts = letter_scripts(text)
        han = counts.get("Han", 0)
        return "zh" if han and han * 3 >= sum(counts.values()) else "en"
