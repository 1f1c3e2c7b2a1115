"""The privacy checks on an LLM answer read Chinese, Japanese and full-width text as the namers do.

A review: `privacy.auditor._words` took a whole Chinese clause for one word, so a name that one user wrote
("王小明", inside "我叫王小明请帮我查退款") was never a rare word and an answer holding it passed; and no copy of a
shown Chinese text ever reached `COPY_WORDS` words, so a verbatim copy passed too. Full-width Latin
("ＪＯＨＮ") was a word of its own, so a full-width copy of an English example was no copy.
"""
from __future__ import annotations

import re

import pytest

from clio_engine.privacy.auditor import RARE_WORD, _words, copies_shown, rare_words, shown_grams, usable_answer
from clio_engine.privacy.scrub import Scrubber
from tests.conftest import load_csv_texts

pytestmark = pytest.mark.unit

# One user writes their own name; six others ask about refunds.
TEXTS = ["我叫王小明请帮我查退款", "退款什么时候到账", "退款到账要几天", "申请退款被拒绝了", "退款失败怎么办",
         "退款到账了吗", "查询退款到账"]
USERS = [0, 1, 2, 3, 4, 5, 6]


def test_a_chinese_name_one_user_wrote_is_a_rare_word_and_an_answer_holding_it_is_refused():
    rare = rare_words(TEXTS, USERS, 3)
    answer = usable_answer("王小明的退款问题", "用户询问退款进度", shown_grams(TEXTS), Scrubber(), rare=rare)
    assert answer == (None, RARE_WORD)
    # A name made of what three users wrote passes, and so do the model's own words. (Bigrams across a word
    # boundary that fewer users wrote, "款问" of "退款问题" in one text, would be refused: the strict side.)
    assert usable_answer("退款到账", "用户询问退款进度", shown_grams(TEXTS), Scrubber(), rare=rare)[0] is not None


# A review's attacks on the bigram reading: one user writes a name, other users write its pieces. Each answer
# holds the name and must be refused (min_users 3).
PIECES = {
    "pieces others write": (["联系人：王小明，电话", "王小姐你好", "王小姐，谢谢", "王小姐在吗", "小明同学", "小明，好", "小明的书"],
                            "王小明"),
    "a function word cuts it": (["联系人：王和平，电话", "世界和平", "和平万岁", "热爱和平", "我是王", "你是王", "国王是王"],
                                "王和平的问题"),
    "hiragana cut by particles": (["担当：はるか。", "るは", "はるかに", "遠くはるかな", "るのはる"], "はるか"),
    "katakana pieces others write": (["担当：マリア。", "マリオ", "マリオです", "エリア", "イタリア", "クリア"], "マリア"),
    "inside a longer run of the answer": (["担当：何明。", "明天", "明天见", "明白", "明了"], "如何明"),
    "digits inside the run": (["订单 王5明 x", "王", "明", "王", "明"], "王5明"),
    "an invisible separator": (["id xqzv7 ok", "other text", "more text"], "x\ufe0fq\ufe0fz\ufe0fv\ufe0f7"),
}


@pytest.mark.parametrize("case", list(PIECES))
def test_a_name_one_user_wrote_is_refused_whatever_others_write_of_its_pieces(case):
    texts, answer = PIECES[case]
    rare = rare_words(texts, list(range(len(texts))), 3)
    assert usable_answer(answer, "A cluster of requests.", set(), Scrubber(), rare=rare) == (None, RARE_WORD)


def test_a_word_most_users_write_is_no_rare_word_because_one_wrote_it_beside_a_curly_quote():
    """An ASCII word is one word whatever text it sits in: a product name many users write is allowed, though only
    one of them wrote it in a text with a non-ASCII character."""
    texts = ["chatgpt wrote my essay", "ask chatgpt for help", "is chatgpt right", "chatgpt\u2019s answer was wrong"]
    rare = rare_words(texts, [0, 1, 2, 3], 3)
    assert usable_answer("ChatGPT essay help", "Requests about ChatGPT.", set(), Scrubber(), rare=rare)[0] is not None


def test_a_verbatim_copy_of_a_shown_chinese_or_japanese_text_is_a_copy():
    chinese = "我的银行卡号尾号是四三二一我在上海浦东新区张江路一百号上班请帮我查一下退款为什么还没到账"
    japanese = "東京都港区六本木一丁目の山田花子です新幹線の予約を取り消したいのですが手数料はかかりますか"
    for text in (chinese, japanese):
        assert copies_shown(text[8:40], shown_grams([text])), text
    assert not copies_shown("退款到账问题", shown_grams([chinese]))  # a few shared characters are no copy


def test_a_full_width_copy_of_an_english_text_is_a_copy():
    shown = "john smith from 42 elm street asked how to reset the router password at his office"
    full_width = "ｊｏｈｎ ｓｍｉｔｈ ｆｒｏｍ ４２ ｅｌｍ ｓｔｒｅｅｔ ａｓｋｅｄ ｈｏｗ ｔｏ ｒｅｓｅｔ ｔｈｅ ｒｏｕｔｅｒ"
    assert copies_shown(full_width, shown_grams([shown]))


def test_english_words_are_unchanged(data_dir):
    """On English text the words are the ones the checks always read: runs of letters and digits, case-folded."""
    texts = load_csv_texts(data_dir, "banking77.csv.gz")[::5]
    for text in texts:
        assert _words(text) == re.findall(r"[^\W_]+", text.casefold()), text
