"""Words in every script, for the namers and the privacy checks alike: one folding and one segmentation.

`fold` lower-cases and NFKC-normalises a text; `spaceless_segments` cuts out the runs of scripts written
without spaces (Chinese, Japanese, Thai, ...), which the namers read as character bigrams
(`naming.keywords.word_tokens`) and the auditor's word checks read alike (`privacy.auditor`). A text whose
word characters are all ASCII takes fast paths (`ascii_words`). Here, not in `naming`, because the privacy
checks need it and `naming` imports `privacy`.
"""
from __future__ import annotations

import unicodedata
from typing import Iterator

import regex  # \p{L}, \p{Han}, \X: Unicode properties `re` lacks

# Chinese and Japanese, written without spaces, are read as character bigrams (`keywords.word_tokens`), so their
# function words cannot be dropped as whole tokens: a particle sits inside a run ("パンの作り方を教えて") and
# glued the bigrams beside it into keywords such as "パンの", "を予約", "ンの". These act as separators
# instead: each occurrence inside a run is cut out as a space would be (`spaceless_segments`).
# Particles and suffixes of one character, then function words, question words and the request formulas a
# chat opens with. Left out: negations, which a name must keep ("没有" of "还没有收到" not yet received, "ません"
# of "届きません" does not arrive: cut out, the name said the opposite), and single characters that sit inside
# common words ("都" of "京都" Kyoto and "成都", "在" of "现在" now, "か" of "届かない", "请" of "申请" apply);
# "的" costs a few words ("目的" purpose) and is worth it.
SPACELESS_FUNCTION_WORDS = frozenset("""
的 了 吗 呢 吧 啊 么 们 我 你 の を に は が で と へ も や
怎么 怎样 什么 为什么 如何 哪里 哪个 哪些 多少 可以 能否 是否 请问 一下 这个 那个 这些 那些 这样 那样
自己 因为 所以 但是 如果 还是 或者 已经 需要 应该 谢谢 你好 请帮 帮我 想要 一个 的话
する します しました して した です でした ます ください という こと もの ため どう
どうして どの どこ なぜ この その あの これ それ あれ どれ ので から まで より など について ように ような
したいです したい たいです たい
""".split())

# A word character outside ASCII, as `regex` counts them (letters, marks of every block, digits, connector
# punctuation, Other_Alphabetic symbols such as "🅰"). Where a text has none — English with curly quotes, dashes
# or most emoji — the ASCII patterns find exactly the words the Unicode ones do, twice as fast. (`re`'s \w
# misses marks outside U+0300–U+036F, "‿" and "🅰": "reset⃗password" took the fast path and split in two.)
_NON_ASCII_WORD = regex.compile(r"[^\W\x00-\x7f]")


def ascii_words(text: str) -> bool:
    """Whether every word character of `text` is ASCII (its punctuation and symbols may not be)."""
    return text.isascii() or _NON_ASCII_WORD.search(text) is None


# Scripts written without spaces between words (Chinese, Japanese, Thai, Lao, Khmer, Burmese) have no word
# boundaries to find, and no segmenter is at hand. A run of them is read as its overlapping bigrams of
# characters (grapheme clusters: a Thai vowel sign stays on its consonant), the usual c-TF-IDF practice for
# Chinese and Japanese without a segmenter: "退款到账" → "退款", "款到", "到账". Most Chinese words are two
# characters long, so the bigrams that set a cluster apart are mostly its words, and adjacent bigrams join
# back into the substring they cover ("退款" + "款到" → "退款到", never "退款 款到"), so every term and name is
# a piece of the texts. A run of one character makes no term (the ≥ 2 rule). The run is cut out of the text
# before words are sought, so a word beside it ("python编程") ends there.
_SPACELESS = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}\u30fc\uff70"  # ー: Common script
_SPACELESS_RUN = regex.compile(rf"[{_SPACELESS}]+")
# Chinese and Japanese function words cut a run as a space would (`SPACELESS_FUNCTION_WORDS`); longest first, so
# "から" is cut whole, not its "か".
_SPACELESS_CUT = regex.compile("|".join(regex.escape(w) for w in sorted(SPACELESS_FUNCTION_WORDS, key=len,
                                                                          reverse=True)))
_GRAPHEME = regex.compile(r"\X")


def fold(text: str) -> str:
    """Lower-cased (`str.lower`: Cyrillic, Greek and accented capitals too) and NFKC-normalised: "e" + combining
    acute and "é" are one letter and one word, as the stop lists write them, and the full-width Latin of CJK
    keyboards ("ＶＢＡ", "ｈｏｗ ｔｏ") is the ASCII word it stands for, a stop word where that is one."""
    if text.isascii():
        return text.lower()
    # The zero-width (non-)joiner is spelling inside a Persian or Hindi word ("می‌خواهم"), but \b reads it as a
    # boundary between word characters, and the word made no token: it goes, and the word stays one.
    return unicodedata.normalize("NFKC", text).lower().replace("\u200c", "").replace("\u200d", "")


def spaceless_segments(text: str) -> Iterator[tuple[str, bool]]:
    """`text` in order as (piece, True) for each run of a script written without spaces and (piece, False)
    for the text between them; ASCII text is one piece. A Chinese or Japanese function word inside a run
    (`SPACELESS_FUNCTION_WORDS`) is read as a space: "パンの作り方" → "パン", " ", "作り方"."""
    if ascii_words(text):
        yield text, False
        return
    end = 0
    for m in _SPACELESS_RUN.finditer(text):
        if m.start() > end:
            yield text[end:m.start()], False
        for i, part in enumerate(_SPACELESS_CUT.split(m.group(0))):  # function words cut the run
            if i:
                yield " ", False  # the cut: no term spans it, and the run's two sides are two runs
            if part:
                yield part, True
        end = m.end()
    if end < len(text):
        yield text[end:], False


def has_spaceless(text: str) -> bool:
    """Whether `text` holds a run of a script written without spaces."""
    return not text.isascii() and _SPACELESS_RUN.search(text) is not None


def bigrams(units: list[str]) -> list[str]:
    """Each two adjacent units of a spaceless run ("退款到" → "退款", "款到")."""
    return [a + b for a, b in zip(units, units[1:])]


def spaceless_runs(text: str) -> list[str]:
    """The runs of scripts written without spaces in `text`, whole (no function word cut out)."""
    return [] if ascii_words(text) else _SPACELESS_RUN.findall(text)


def is_spaceless(term: str) -> bool:
    """True for a term of a spaceless script (a bigram or the substring adjacent bigrams cover)."""
    return not term.isascii() and _SPACELESS_RUN.fullmatch(term) is not None


def spaceless_units(run: str) -> list[str]:
    """The characters of a spaceless run, each as its grapheme cluster (a character and its marks)."""
    return _GRAPHEME.findall(run)


_NON_LATIN_LETTER = regex.compile(r"[^\P{L}\p{Latin}]")  # a letter of any script but Latin


def non_latin_share(texts, sample: int = 20_000) -> float:
    """The share of `texts` (at most `sample` of them, evenly spaced) that hold a letter of a script other than
    Latin (Chinese, Cyrillic, Arabic, Devanagari, Hangul, ...); 0.0 for none."""
    n = len(texts)
    if n == 0:
        return 0.0
    step = max(1, n // sample)
    picked = [texts[i] for i in range(0, n, step)]
    return sum(1 for t in picked if not t.isascii() and _NON_LATIN_LETTER.search(t)) / len(picked)
