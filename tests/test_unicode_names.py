"""The no-LLM namers read words in every script, not only ASCII.

Their tokenizers were ASCII regexes: "Kündigung", "réservation" and "cancelación" were no words (nor any part
of them), a Russian or Chinese cluster had no term at all and was named "Cluster 0.n", and the Russian stop
words of `stopwords_multilingual` could never match. Here clusters of Russian, German, French, Spanish,
Chinese and Japanese texts (written for this test) are named by both namers through `name_tree`, and the
tokenization of real English data is compared with the ASCII patterns the namers used before, kept below as
the reference: on English nothing may change.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer

from clio_engine.naming.keywords import STOP_WORDS as KEYWORD_STOP_WORDS
from clio_engine.naming.keywords import document_terms, names_from_keywords, streamed_terms
from clio_engine.naming import phrases as phrase_module
from clio_engine.naming.phrases import STOP_WORDS as PHRASE_STOP_WORDS
from clio_engine.naming.phrases import _run_phrases, text_phrases
from tests.conftest import load_csv_texts
from tests.test_foreign_stopwords import NAMERS, name_clusters

pytestmark = pytest.mark.unit

CLUSTERS = {
    "russian_delivery": [
        "Где мой заказ? Доставка задерживается уже третий день", "Курьер не привёз заказ вовремя",
        "Сколько стоит доставка заказа до двери", "Когда курьер доставит мой заказ",
        "Доставка заказа в Москву занимает неделю", "Можно ли изменить адрес доставки заказа",
        "Курьер опоздал с доставкой заказа", "Почему доставка заказа такая медленная",
        "Отследить доставку заказа по номеру", "Заказ потерялся при доставке курьером",
        "Курьерская доставка заказа на дом", "Как ускорить доставку моего заказа",
        "Доставка заказа отменена без объяснений", "Курьер позвонил, но заказ не привёз",
        "Бесплатная доставка заказа от двух тысяч рублей", "Заказ передан курьеру для доставки",
        "Доставка заказа в выходные дни возможна?", "Курьер оставил заказ у соседей",
        "Статус доставки заказа не меняется", "Сроки доставки заказа в регионы"],
    "russian_refund": [
        "Как вернуть деньги за товар", "Возврат денег на карту занимает сколько дней",
        "Мне не вернули деньги за возврат товара", "Оформить возврат товара и получить деньги",
        "Деньги за возврат ещё не пришли на карту", "Можно ли вернуть товар без чека",
        "Возврат денег за бракованный товар", "Когда придут деньги за возвращённый товар",
        "Процедура возврата товара в магазин", "Хочу вернуть деньги за неподошедший товар",
        "Возврат денег после отмены покупки", "Сколько ждать возврата денег на карту",
        "Магазин отказал в возврате денег", "Возврат товара надлежащего качества",
        "Деньги вернули не полностью после возврата", "Как оформить возврат денег онлайн",
        "Возврат денег за товар со скидкой", "Почему возврат денег такой долгий",
        "Нужна помощь с возвратом денег за товар", "Вернуть деньги за подписку"],
    "german_cancellation": [
        "Kündigung meines Handyvertrags zum Monatsende", "Ich möchte die Kündigung meines Vertrags bestätigen lassen",
        "Wo schicke ich die Kündigung hin?", "Kündigung des Abonnements per E-Mail möglich?",
        "Fristlose Kündigung wegen Preiserhöhung", "Die Kündigung wurde nicht bestätigt",
        "Wie lange ist die Kündigungsfrist für den Vertrag", "Kündigung des Vertrags vor Ablauf der Laufzeit",
        "Bestätigung der Kündigung fehlt noch", "Kündigung online einreichen, geht das?",
        "Muss die Kündigung schriftlich erfolgen", "Kündigung zurückziehen nach dem Absenden",
        "Sonderkündigung nach Umzug ins Ausland", "Kündigung meines Fitnessstudio-Vertrags",
        "Ich habe die Kündigung rechtzeitig geschickt", "Kündigung des Stromvertrags beim Anbieter",
        "Warum wurde meine Kündigung abgelehnt", "Kündigung per Einschreiben senden",
        "Vorlage für eine Kündigung gesucht", "Kündigung zum nächstmöglichen Zeitpunkt"],
    "german_transfer": [
        "Überweisung auf ein ausländisches Konto dauert zu lange", "Meine Überweisung ist noch nicht angekommen",
        "Wie storniere ich eine Überweisung", "Überweisung an den falschen Empfänger ausgeführt",
        "Gebühren für eine Überweisung ins Ausland", "Echtzeitüberweisung funktioniert nicht",
        "Überweisung wurde abgelehnt, warum?", "Limit für eine Überweisung erhöhen",
        "Überweisung zurückholen nach Betrug", "Dauerauftrag statt einzelner Überweisung einrichten",
        "Überweisung am Wochenende möglich?", "Empfänger hat die Überweisung nicht erhalten",
        "Überweisung per App freigeben", "Wie lange dauert eine Überweisung",
        "Überweisung doppelt ausgeführt", "Verwendungszweck der Überweisung ändern",
        "Überweisung an ein neues Konto", "Bestätigung der Überweisung herunterladen",
        "Überweisung ist im Status ausstehend", "Terminüberweisung für nächsten Monat anlegen"],
    "french_booking": [
        "Je voudrais modifier ma réservation de chambre", "Confirmer la réservation de chambre pour samedi",
        "Réservation de chambre double avec petit-déjeuner", "Ma réservation n'apparaît pas dans l'application",
        "Comment annuler une réservation de chambre", "Réservation de chambre pour trois nuits",
        "Prolonger la réservation d'une nuit", "Réservation de chambre avec vue sur la mer",
        "Je n'ai pas reçu la confirmation de réservation", "Changer les dates de la réservation de chambre",
        "Réservation de chambre pour un séjour d'affaires", "La réservation a été débitée deux fois",
        "Réservation de chambre familiale en août", "Est-ce que la réservation est remboursable",
        "Réservation de chambre accessible aux fauteuils roulants", "Ajouter un lit bébé à ma réservation",
        "Réservation de chambre tardive après minuit", "Numéro de réservation introuvable",
        "Réservation de chambre pour un groupe", "Payer la réservation de chambre à l'arrivée"],
    "french_refund": [
        "Quand vais-je recevoir mon remboursement", "Remboursement du billet de train annulé",
        "Le remboursement n'est toujours pas arrivé", "Demande de remboursement refusée",
        "Remboursement intégral après annulation du vol", "Délai de remboursement sur la carte bancaire",
        "Remboursement partiel d'une commande", "Comment obtenir un remboursement rapide",
        "Remboursement du billet non utilisé", "Suivi de ma demande de remboursement",
        "Remboursement reçu en bon d'achat au lieu d'argent", "Pourquoi le remboursement prend autant de temps",
        "Remboursement du billet d'avion retardé", "Formulaire de remboursement introuvable",
        "Remboursement sur un autre compte bancaire", "Remboursement des frais de dossier",
        "Montant du remboursement incorrect", "Remboursement du billet après grève",
        "Le remboursement a été débité au lieu d'être crédité", "Annuler la demande de remboursement"],
    "spanish_cancellation": [
        "Quiero la cancelación de mi pedido", "¿Cómo solicito la cancelación del pedido?",
        "Cancelación del pedido antes del envío", "No me dejan hacer la cancelación del pedido",
        "Cancelación de la suscripción anual", "¿Cuánto tarda la cancelación del pedido?",
        "Cancelación del pedido y devolución del dinero", "Error en la cancelación del pedido",
        "Confirmación de cancelación no recibida", "Cancelación del pedido por retraso",
        "Solicitud de cancelación rechazada", "Cancelación del pedido duplicado",
        "Política de cancelación de pedidos", "Cancelación gratuita dentro de 24 horas",
        "Cancelación del pedido desde la aplicación", "¿Puedo pedir la cancelación del pedido por teléfono?",
        "Cancelación parcial del pedido", "Cargo después de la cancelación del pedido",
        "Cancelación del pedido equivocado", "Plazo para la cancelación del pedido"],
    "spanish_password": [
        "Olvidé mi contraseña y no puedo entrar", "Restablecer la contraseña de la cuenta",
        "Cambiar la contraseña desde el móvil", "La contraseña nueva no funciona",
        "No recibo el correo para recuperar la contraseña", "Contraseña bloqueada después de tres intentos",
        "¿Cómo cambio la contraseña?", "Requisitos de la contraseña segura", "Recuperar contraseña olvidada",
        "La contraseña caducó y debo cambiarla", "Error al restablecer la contraseña",
        "Contraseña incorrecta aunque la escribo bien", "Cambiar la contraseña del correo",
        "Enlace para restablecer la contraseña caducado", "Contraseña de la aplicación bancaria",
        "Guardar la contraseña en el navegador", "Olvidé la contraseña del wifi", "Contraseña temporal no llega",
        "Cambio de contraseña obligatorio", "Restablecer contraseña sin correo"],
    "chinese_dumplings": [
        "怎么在家包饺子", "饺子馅怎么调才好吃", "猪肉白菜饺子馅的做法", "饺子皮怎么擀得薄", "煮饺子要煮多久",
        "饺子煮破了怎么办", "韭菜鸡蛋饺子馅怎么做", "冷冻饺子怎么煎", "饺子皮用什么面粉", "包饺子的简单方法",
        "饺子蘸料怎么调", "三鲜饺子馅的配方", "过年包饺子的习俗", "饺子馅太咸了怎么办", "手工饺子皮的做法",
        "饺子怎么包才不会漏", "蒸饺子需要多长时间", "素饺子馅有哪些", "饺子冻在冰箱能放多久", "煎饺子怎么做才脆"],
    "chinese_refund": [
        "退款什么时候到账", "申请退款被拒绝了", "退款到银行卡需要几天", "订单取消后怎么退款", "退款金额不对怎么办",
        "退款一直显示处理中", "如何申请全额退款", "退款退到哪里了", "商家不同意退款", "退款审核要多久",
        "退货退款的流程", "退款没有收到怎么办", "部分退款怎么申请", "退款到支付宝要多久", "退款申请怎么撤销",
        "机票退款手续费", "退款失败的原因", "退款进度在哪里查", "会员费可以退款吗", "退款后优惠券还能用吗"],
    "japanese_bread": [
        "パンの作り方を教えてください", "食パンがふくらまない原因", "ホームベーカリーで食パンを焼く",
        "パン生地の発酵時間はどれくらい", "強力粉でパンを作る方法", "パン生地がべたつく", "天然酵母パンの作り方",
        "食パンの焼き時間と温度", "パン生地をこねるコツ", "フランスパンの作り方", "パンがかたくなる理由",
        "米粉パンのレシピ", "パン生地を冷凍保存したい", "食パンをふわふわにするには", "パン作りに必要な道具",
        "バターロールの成形方法", "パン生地の一次発酵", "手ごねパンの簡単レシピ", "全粒粉パンの作り方",
        "パンの二次発酵のやり方"],
    "japanese_shinkansen": [
        "新幹線の予約を変更したい", "新幹線の指定席を予約する方法", "新幹線の予約をキャンセルしたい",
        "新幹線の切符をネットで予約", "新幹線の予約確認メールが届かない", "東京から大阪まで新幹線を予約",
        "新幹線の予約はいつからできる", "新幹線のグリーン車を予約", "新幹線の予約の払い戻し",
        "新幹線の座席を窓側で予約", "新幹線の予約をスマホでする", "新幹線の往復予約は割引がある",
        "新幹線の自由席と指定席の違い", "新幹線の予約番号を忘れた", "新幹線の早割予約", "新幹線の予約が取れない",
        "新幹線の乗車時間を変更", "新幹線の予約サイトの使い方", "家族で新幹線を予約する", "新幹線の予約と発券"],
}
NAMES = list(CLUSTERS)

# Hand-written (not read from `stopwords_multilingual`): Russian function words no name may consist of, nor
# start or end with.
RUSSIAN_FUNCTION = {"и", "в", "не", "что", "на", "я", "с", "как", "а", "то", "все", "но", "за", "по", "мне",
                    "от", "меня", "нет", "о", "из", "когда", "ли", "если", "уже", "или", "до", "можно", "для",
                    "мы", "без", "кто", "этот", "мой", "при", "после", "почему", "сколько", "такой",
                    "ещё", "еще", "у", "со", "это", "очень", "пожалуйста"}


@pytest.fixture(scope="module")
def named():
    """{namer: {cluster: its NodeName}}: one copy of each cluster's texts, every text its own user, one-hot
    vectors per cluster (no model), as `test_foreign_stopwords` names its clusters."""
    return {namer: dict(zip(NAMES, nodes)) for namer, nodes in name_clusters(CLUSTERS, copies=1).items()}


def _parts(name: str) -> list[str]:
    """The phrases of a name: "A, b" (a pair of phrases) and "a / b" (keywords), lower-cased."""
    return [p for p in re.split(r",\s*|\s+/\s+", name.lower()) if p]


def _words(text: str) -> list[str]:
    return re.findall(r"[^\W\d_]+(?:-[^\W\d_]+)*", text.lower())


def _assert_named_by_own_words(node, cluster: str, namer: str):
    assert not re.fullmatch(r"Cluster \d+\.\d+", node.name), f"{namer}: {cluster} got the placeholder {node.name!r}"
    vocabulary = {w for text in CLUSTERS[cluster] for w in _words(text)}
    missing = [w for w in _words(node.name) if w not in vocabulary]
    assert not missing, f"{namer} named {cluster} {node.name!r}: {missing} are no whole words of its texts"


@pytest.mark.parametrize("namer", list(NAMERS))
@pytest.mark.parametrize("cluster", ["russian_delivery", "russian_refund"])
def test_russian_clusters_are_named_by_their_cyrillic_words(named, namer, cluster):
    node = named[namer][cluster]
    _assert_named_by_own_words(node, cluster, namer)
    assert re.fullmatch(r"[а-яё /,-]+", node.name.lower()), f"{namer}: {node.name!r} is not Cyrillic words"
    edges = {w for part in _parts(node.name) for w in (_words(part)[0], _words(part)[-1])}
    assert not edges & RUSSIAN_FUNCTION, f"{namer}: {node.name!r} starts or ends with a function word"
    assert not {w for k in node.keywords for w in _words(k)[:1] + _words(k)[-1:]} & RUSSIAN_FUNCTION, node.keywords


@pytest.mark.parametrize("namer", list(NAMERS))
@pytest.mark.parametrize("cluster, word", [("german_cancellation", "kündigung"), ("german_transfer", "überweisung"),
                                           ("french_booking", "réservation"), ("spanish_cancellation", "cancelación"),
                                           ("spanish_password", "contraseña")])
def test_accented_words_stay_whole(named, namer, cluster, word):
    node = named[namer][cluster]
    _assert_named_by_own_words(node, cluster, namer)
    terms = [node.name.lower(), *node.keywords]
    assert any(word in _words(t) for t in terms), f"{namer}: {word!r} is missing from {node.name!r}, {node.keywords}"


@pytest.mark.parametrize("namer", list(NAMERS))
@pytest.mark.parametrize("cluster", ["chinese_dumplings", "chinese_refund", "japanese_bread", "japanese_shinkansen"])
def test_cjk_clusters_are_named_by_pieces_of_their_texts(named, namer, cluster):
    node = named[namer][cluster]
    assert not re.fullmatch(r"Cluster \d+\.\d+", node.name), f"{namer}: {cluster} got the placeholder"
    for part in _parts(node.name) + list(node.keywords):
        for piece in part.split(" "):  # a keyword 2-gram across two runs is written with a space between
            assert any(piece in text.lower() for text in CLUSTERS[cluster]), (namer, node.name, piece)
    parts = _parts(node.name)  # two pieces of one run are one substring: "新幹線", never "幹線 / 新幹"
    assert not any(a[-1] == b[0] for a in parts for b in parts if a != b), (namer, node.name)
    topic = {"chinese_dumplings": "饺子", "chinese_refund": "退款", "japanese_bread": "パン",
             "japanese_shinkansen": "新幹線"}[cluster]
    assert any(topic in t for t in [node.name, *node.keywords]), (namer, node.name, node.keywords)


# Hand-written (not read from `stopwords_multilingual`): particles and function words of Chinese and Japanese
# that no name or keyword may start or end with, or hold ("パンの", "を予約", "怎么" were keywords).
CJK_PARTICLES = set("的了吗呢么のをにはがでと")
CJK_FUNCTION = {"怎么", "什么", "可以", "一下", "する", "します", "ください", "です", "ます", "こと"}


@pytest.mark.parametrize("namer", list(NAMERS))
@pytest.mark.parametrize("cluster", ["chinese_dumplings", "chinese_refund", "japanese_bread", "japanese_shinkansen"])
def test_cjk_particles_and_function_words_name_and_key_nothing(named, namer, cluster):
    node = named[namer][cluster]
    for term in _parts(node.name) + list(node.keywords):
        for piece in term.split(" "):
            assert piece[0] not in CJK_PARTICLES and piece[-1] not in CJK_PARTICLES, (namer, node.name, term)
            assert not any(word in piece for word in CJK_FUNCTION), (namer, node.name, term)


def test_cjk_bigrams_join_as_the_text_reads():
    """Adjacent bigrams of a run are one substring ("退款到账"), never "退款 款到" or "退款款到"."""
    assert set(text_phrases("退款到账")) == {"退款", "款到", "到账", "退款到", "款到账", "退款到账"}
    assert text_phrases("我") == []  # one character: no term (the ≥ 2 rule)
    _, vocab = document_terms(["退款到账", "退款到账"], min_df=1)
    assert set(vocab) == {"退款", "款到", "到账", "退款到", "款到账"}
    assert "python" in text_phrases("我想学python编程")  # a word beside a run ends where the run starts
    assert names_from_keywords([["幹線", "新幹", "新幹線", "予約"]]) == ["新幹線"]  # overlapping bigrams: one piece
    assert names_from_keywords([["饺子", "怎么"]]) == ["饺子 / 怎么"]


def test_russian_stop_words_apply():
    phrases = text_phrases("Где мой заказ и почему его нет")
    assert phrases and all(w not in RUSSIAN_FUNCTION for p in phrases for w in (p.split()[0], p.split()[-1]))
    assert "заказ" in phrases
    _, vocab = document_terms(["Где мой заказ и почему его нет"] * 2, min_df=1)
    assert set(vocab) == {"заказ"}
    assert {"что", "для", "über", "qué"} <= PHRASE_STOP_WORDS and {"что", "für"} <= set(KEYWORD_STOP_WORDS)


def test_decomposed_accents_stay_inside_the_word():
    nfd = "re\u0301servation de chambre"  # "é" as e + combining acute
    assert {"réservation", "réservation de chambre"} <= set(text_phrases(nfd))
    _, vocab = document_terms([nfd, "réservation de chambre"], min_df=2)
    assert "réservation" in set(vocab)


def test_names_capitalise_any_script():
    longest = lambda text: [max(text_phrases(text), key=len)]  # noqa: E731
    assert names_from_keywords([longest("éxito total")]) == ["Éxito total"]
    assert names_from_keywords([longest("ÉXITO TOTAL")]) == ["Éxito total"]
    assert names_from_keywords([longest("Доставка заказа")]) == ["Доставка заказа"]
    assert names_from_keywords([longest("退款到账")]) == ["退款到账"]


# Today's ASCII patterns, kept as the reference the Unicode tokenizers must equal on English text.
OLD_KEYWORD_TOKEN = r"(?u)\b[a-zA-Z][a-zA-Z0-9+#.-]*[a-zA-Z0-9+#]\b"
OLD_PHRASE_TOKEN = re.compile(r"(?u)\b[a-zA-Z][a-zA-Z0-9+#.'-]*[a-zA-Z0-9+#]\b")
OLD_WORD = re.compile(r"(?u)\b[a-zA-Z](?:[a-zA-Z0-9+#.'-]*[a-zA-Z0-9+#])?\b")
OLD_SPANNABLE = re.compile(r"(?u)\b[a-zA-Z]\b|\s+")
OLD_CLAUSE = re.compile(r"[.,;:!?()\[\]\"]+|\s-\s")


def _old_text_phrases(text: str, max_words: int = 3) -> list[str]:
    out: list[str] = []
    for clause in OLD_CLAUSE.split(text.lower().replace("\u2019", "'")):
        run: list[str] = []
        end = 0
        runs = []
        for m in OLD_PHRASE_TOKEN.finditer(clause):
            if run and OLD_SPANNABLE.sub("", clause[end:m.start()]):
                runs.append(run)
                run = []
            run.append(m.group(0))
            end = m.end()
        if run:
            runs.append(run)
        for words in runs:
            out.extend(_run_phrases(words, max_words))
    return out


@pytest.fixture(scope="module")
def english(data_dir):
    return load_csv_texts(data_dir, "banking77.csv.gz") + load_csv_texts(data_dir, "hwu64.csv.gz")


def test_english_keyword_terms_are_unchanged(english):
    reference = CountVectorizer(ngram_range=(1, 2), stop_words=KEYWORD_STOP_WORDS, min_df=2,
                                token_pattern=OLD_KEYWORD_TOKEN)
    expected, expected_vocab = reference.fit_transform(english), reference.get_feature_names_out()
    counts, vocab = document_terms(english, min_df=2)
    assert list(vocab) == list(expected_vocab)
    assert (counts != expected).nnz == 0
    labels = [np.arange(len(english), dtype=np.int64) % 7]
    streamed, _ = streamed_terms(lambda index: [english[i] for i in index], labels, np.arange(len(english)), [7],
                                 min_df=2, chunk=5000)
    assert list(streamed[0].vocab) == list(expected_vocab)


def test_english_phrases_and_words_are_unchanged(english):
    for text in english:
        assert text_phrases(text, 4) == _old_text_phrases(text, 4), text
        for clause in OLD_CLAUSE.split(text.lower().replace("\u2019", "'")):
            assert phrase_module.clause_words(clause) == OLD_WORD.findall(clause), clause  # verb_like's words


def test_full_width_latin_is_read_as_the_ascii_words_it_stands_for():
    """CJK keyboards type Latin letters full-width: "ＥＸＣＥＬ ＶＢＡ ｑｕｅｓｔｉｏｎ， ｈｏｗ ｔｏ…" (a Stack Overflow
    title) made terms "ｖｂａ" and "ｈｏｗ ｔｏ" (stop words unrecognised) beside the "vba" of other users."""
    full = "ＥＸＣＥＬ ＶＢＡ ｑｕｅｓｔｉｏｎ， ｈｏｗ ｔｏ ｒｅｔｕｒｎ ａ ｒａｎｇｅ ｏｆ ｃｅｌｌｓ？"
    plain = "EXCEL VBA question, how to return a range of cells?"
    assert document_terms([full, full], min_df=1)[1].tolist() == document_terms([plain, plain], min_df=1)[1].tolist()
    assert text_phrases(full) == text_phrases(plain)


def test_english_with_curly_quotes_and_dashes_takes_the_ascii_path_with_the_unicode_words(english):
    """A text whose only non-ASCII characters are punctuation or symbols (’ “ ” — 👍) is read with the fast ASCII
    patterns (`keywords.ascii_words`); its words must be the ones the Unicode pattern finds."""
    from clio_engine.naming import keywords

    texts = [t.replace("'", "\u2019").replace(" - ", " \u2014 ") + " \U0001f44d" for t in english[::7]]
    texts += ["na\u00efve caf\u00e9 \u2014 d\u00e9j\u00e0 vu", "x\u0301 y\u0308z stra\u00dfe"]  # accents: the Unicode path
    # Word characters `re` does not count as \w: marks outside U+0300–U+036F, connector punctuation, "🅰" (a review)
    texts += ["reset\u20d7password now", "reset\u203fpassword now", "reset\u1ab0pass", "plan \U0001f170 card"]
    analyze = keywords.term_analyzer((1, 1))
    for text in texts:
        folded = keywords.fold(text)
        unicode_words = [w for w in keywords._TOKEN.findall(folded) if w not in KEYWORD_STOP_WORDS]
        assert analyze(text) == unicode_words, text
        for clause in phrase_module._CLAUSE.split(folded.replace("\u2019", "'")):
            runs = [w for run in phrase_module.word_runs(clause) for w in run]
            assert runs == phrase_module._TOKEN.findall(clause), clause


def test_a_persian_word_with_a_zero_width_non_joiner_stays_one_word():
    """"می‌خواهم" (I want) is spelt with U+200C inside; \\b read it as a boundary and the word made no term."""
    texts = ["می\u200cخواهم بلیط بخرم", "می\u200cخواهم بلیط بخرم"]
    vocab = set(document_terms(texts, min_df=1)[1].tolist())
    assert "میخواهم" in vocab and "بلیط" in vocab, vocab
    assert "میخواهم" in text_phrases(texts[0])


# Hindi, Arabic, Korean and Persian clusters, two per language (contrast needs a neighbour of the same script).
MORE_SCRIPTS = {
    "hindi_password": [
        "मुझे अपना पासवर्ड बदलना है", "पासवर्ड कैसे बदलें", "मैं पासवर्ड भूल गया हूँ", "पासवर्ड रीसेट नहीं हो रहा है",
        "नया पासवर्ड कैसे बनाएं", "पासवर्ड बदलने का तरीका क्या है", "मेरा पासवर्ड काम नहीं कर रहा है",
        "पासवर्ड रीसेट का लिंक नहीं आया", "क्या मैं पासवर्ड बदल सकता हूँ", "पासवर्ड में क्या गलती है"],
    "hindi_delivery": [
        "मेरा ऑर्डर कब आएगा", "डिलीवरी में देरी क्यों हो रही है", "ऑर्डर की डिलीवरी कब होगी", "डिलीवरी का पता बदलना है",
        "मेरी डिलीवरी अभी तक नहीं आई", "डिलीवरी की स्थिति क्या है", "क्या डिलीवरी आज होगी", "डिलीवरी बहुत धीमी है",
        "ऑर्डर डिलीवरी में कितना समय लगेगा", "डिलीवरी के लिए कौन आएगा"],
    "arabic_cancel": [
        "أريد إلغاء الطلب", "كيف ألغي الطلب من التطبيق", "هل يمكن إلغاء الطلب بعد الدفع", "إلغاء الطلب لا يعمل",
        "تم إلغاء الطلب بدون سبب", "كيف يتم إلغاء الطلب", "أريد إلغاء الطلب الأخير", "لماذا لا أستطيع إلغاء الطلب",
        "إلغاء الطلب في الموقع", "هل إلغاء الطلب مجاني"],
    "arabic_refund": [
        "متى يصل استرداد المبلغ", "أريد استرداد المبلغ", "كيف أطلب استرداد المبلغ", "لم يصل استرداد المبلغ إلى حسابي",
        "هل استرداد المبلغ ممكن", "استرداد المبلغ يأخذ وقتا طويلا", "ما هي مدة استرداد المبلغ",
        "استرداد المبلغ إلى البطاقة", "رفض استرداد المبلغ", "أين استرداد المبلغ"],
    "korean_password": [
        "비밀번호 변경하고 싶어요", "비밀번호 변경 어떻게 해요", "비밀번호 잊어버렸어요 좀 도와주세요", "비밀번호 재설정 안 돼요",
        "비밀번호 변경 방법 알려주세요", "새 비밀번호 설정 좀 해주세요", "비밀번호 변경 메일 안 와요",
        "제가 비밀번호 변경 했는데 로그인 안 돼요", "비밀번호 재설정 링크 있나요", "저는 비밀번호 변경 못 해요"],
    "korean_shipping": [
        "배송 조회 어떻게 해요", "배송 너무 늦어요", "배송 상태 확인 좀 해주세요", "배송 주소 변경 하고 싶어요",
        "배송 언제 와요", "제가 주문한 배송 안 와요", "배송 조회 안 돼요", "배송비 얼마예요", "저는 배송 조회 못 해요",
        "배송 지연 있나요"],
    "persian_order": [
        "می‌خواهم سفارش را لغو کنم", "چطور سفارش را لغو کنم", "لغو سفارش در برنامه", "سفارش من لغو نمی‌شود",
        "چرا لغو سفارش کار نمی‌کند", "لغو سفارش بعد از پرداخت", "آیا لغو سفارش رایگان است", "لغو سفارش از سایت",
        "لطفا سفارش را لغو کنید", "لغو سفارش خیلی سخت است"],
    "persian_ticket": [
        "بلیط قطار برای فردا", "چطور بلیط قطار بخرم", "بلیط قطار تهران به مشهد", "قیمت بلیط قطار چقدر است",
        "بلیط قطار را لغو کنم", "بلیط قطار پیدا نمی‌کنم", "خرید بلیط قطار آنلاین", "بلیط قطار برای دو نفر",
        "بلیط قطار ارزان", "آیا بلیط قطار موجود است"],
}
# Hand-written (not read from `stopwords_multilingual`): their function words no name or keyword may start or end with.
OTHER_SCRIPT_FUNCTION = {"है", "हैं", "में", "का", "की", "के", "को", "से", "मुझे", "कैसे", "क्या", "नहीं", "मेरा", "मेरी",
                         "في", "من", "على", "كيف", "هل", "أريد", "لا", "لم", "إلى",
                         "در", "به", "از", "را", "است", "که", "چطور", "چرا", "لطفا", "آیا",
                         "좀", "어떻게", "있나요", "싶어요", "해주세요", "저는", "제가", "안", "못"}


@pytest.fixture(scope="module")
def named_other_scripts():
    return {namer: dict(zip(MORE_SCRIPTS, nodes)) for namer, nodes in name_clusters(MORE_SCRIPTS, copies=1).items()}


@pytest.mark.parametrize("namer", list(NAMERS))
@pytest.mark.parametrize("cluster", list(MORE_SCRIPTS))
def test_hindi_arabic_korean_and_persian_function_words_name_and_key_nothing(named_other_scripts, namer, cluster):
    node = named_other_scripts[namer][cluster]
    assert not re.fullmatch(r"Cluster \d+\.\d+", node.name), (namer, cluster)
    for term in _parts(node.name) + list(node.keywords):
        words = term.split()
        assert words[0] not in OTHER_SCRIPT_FUNCTION and words[-1] not in OTHER_SCRIPT_FUNCTION, (namer, node.name, term)


@pytest.mark.parametrize("text, negated", [
    ("인증번호가 안 와요", "안 와요"), ("Не приходит код", "не приходит код"), ("my card is not working", "not working"),
    ("card doesn't work", "doesn't work"), ("لا أستطيع تسجيل الدخول", "لا أستطيع"), ("银行卡还没有收到", "没有收到"),
    ("荷物が届かない", "届かない")])
def test_a_negation_stays_in_the_phrase_it_turns_around(text, negated):
    """A name must not say the opposite of its texts: "Приходит код" (code arrives) named texts "не приходит код",
    "인증번호가 와요" named "인증번호가 안 와요" (a review). A negation may lead a phrase, and is never one alone."""
    phrases = text_phrases(text)
    assert negated in phrases, phrases
    assert not {"not", "не", "안", "لا", "doesn't"} & set(phrases), phrases


def test_words_that_hold_a_cut_character_stay_whole():
    """Kyoto (京都), now (现在): single characters that sit inside common words cut nothing."""
    assert "京都" in text_phrases("京都行きの新幹線を予約したい")
    assert "现在" in text_phrases("现在在线支付")


def test_an_elided_article_leaves_its_word_to_the_phrase():
    """"l'application", "d'identité" made no phrase (a word with an apostrophe was a contraction); a negation or a
    pronoun before a verb keeps the word out ("n'arrive" is not "arrive", "j'ai" would name "Ai")."""
    assert "ouvrir application" in text_phrases("Je ne peux pas ouvrir l'application")
    assert "vérification identité" in text_phrases("vérification d'identité")
    assert "arrive" not in text_phrases("le code n'arrive pas") and "ai" not in text_phrases("j'ai oublié")


@pytest.mark.parametrize("text, word", [("Подскажите, как восстановить пароль", "подскажите"),
                                        ("Können Sie mir helfen mit der Einkaufsliste", "helfen"),
                                        ("비밀번호 변경 어떻게 하나요", "하나요"), ("ayuda con mi contraseña", "ayuda")])
def test_help_me_and_tell_me_name_nothing(text, word):
    """"Подскажите" (tell me), "helfen", "하나요" were whole names (a review): like English "help" and "tell", no
    phrase starts or ends with them."""
    edges = {w for p in text_phrases(text) for w in (p.split()[0], p.split()[-1])}
    assert word not in edges, text_phrases(text)
