"""Function words of the commonest non-English languages of chat data, which never name a cluster nor key it.

The namers' own stop list is English (scikit-learn's, less the content words it holds, plus chat fillers:
`phrases.STOP_WORDS`), so in a run on multilingual prompts Spanish, Vietnamese or French function words
became names and keywords ("Si, cho"; keywords "si, cho, trong, una, por, que, en, los"): they are frequent,
and frequent only in the clusters of their language, which is what c-TF-IDF rewards.

How the lists were chosen: written by hand, one frozenset per language, from the closed word classes of each
language as a grammar lists them — articles, prepositions (and their contractions with articles: "del",
"au", "zum", "nella"), conjunctions, personal, possessive, demonstrative and interrogative pronouns and
adverbs, the forms of "be" / "have" / "can" / "want" a request opens with, negation, common particles and
intensifiers ("muy", "sehr", "rất"), and the greetings and "please" / "thank you" a chat starts or ends with
(the foreign counterparts of `phrases.FILLERS`). Content words are left out, even frequent ones. Each word
is written as people type it: with its diacritics and, where those are often left off (Vietnamese,
Turkish, Polish, Portuguese), without them too ("không" and "khong"). Russian is in Cyrillic; Hindi, Arabic, Persian and Korean
in their scripts.

The namers' tokenizer (`keywords._TOKEN_PATTERN`) reads words of every script, lower-cased and NFKC-normalised
(`word_split.fold`), so the accented and Cyrillic entries apply as written ("qué", "für", "что"); each list is
NFC-normalised and lower-cased here too (`_words`), so an entry typed in decomposed form still matches.
Chinese, Japanese and Thai runs are read as character bigrams (`keywords.word_tokens`); Chinese and
Japanese function words cut those runs instead (`word_split.SPACELESS_FUNCTION_WORDS`), and Thai has no list.

The English rule: a foreign function word is dropped only where it is not a common English word. The words
that are (`ENGLISH_COLLISIONS`) stay possible names and keywords: English content words (Spanish "son",
"era", "hay", "solo", "sin", "soy", French "pour", "car", "par", "comment", Italian "come", "dove", German
"die", "war", "hat", "bin", "man", "falls", Dutch "door", "men", "met", Indonesian "apa", "mana", "pun",
Turkish "var", Polish "ale", "pod", Vietnamese "ban", "day", "rat", "van", and "ai" of three languages),
and the words chat data uses as English terms (Uber, EU, OS, "io", "len", "dir", "col", "num", Jest,
"todo", and "com" of "dot com": dropped, it cost hwu64's add-contact clusters their name "Add / dot com").
An English cluster loses more by losing "car" or "AI" than a foreign cluster gains. A foreign function
word that is also an English *function* word ("me", "no", "will", "also", "over") is dropped by the
English list anyway. A rare English use does not outweigh a common function word: "yang" (of yin and
yang), "tot", "nay", and the place and time-zone abbreviations "la", "los" / "las" (Los Angeles, Las
Vegas), "est", "ist" are dropped ("los angeles" is named by "angeles"). The collisions were picked by hand
from the lists, then every list word that occurs in the English sets of ../shared/data (banking77, hwu64,
massive, arena-hard, mt-bench) was looked at in its texts. `FOREIGN_STOP_WORDS` is the union of the
languages less the collisions.
"""
from __future__ import annotations

import unicodedata


def _words(text: str) -> frozenset[str]:
    """The whitespace-separated words of `text`, NFC-normalised and lower-cased as the namers fold texts."""
    return frozenset(unicodedata.normalize("NFC", w.lower()) for w in text.split())


SPANISH = _words("""
el la lo los las un una unos unas al del de a en con por para sin sobre entre hasta desde hacia contra
según segun durante mediante y e o u ni pero sino aunque que qué si sí no como cómo cuando cuándo donde
dónde porque porqué cual cuál cuales cuáles quien quién quienes cuanto cuánto cuanta cuánta cuantos cuántos
yo tú tu él ella ello nosotros nosotras vosotros vosotras ellos ellas usted ustedes me te se nos os le les
mi mis tus su sus nuestro nuestra nuestros nuestras vuestro vuestra mío mía tuyo tuya suyo suya
este esta estos estas ese esa esos esas eso esto aquel aquella aquellos aquellas aquello
es son soy eres somos sois ser sido siendo fue fueron era eran sea sean estar está esta estás estas estoy
estamos están estan estaba estado ha he has han hemos hay haber había habia tengo tiene tienes tienen tener
puedo puede puedes pueden podría podria hacer hace hago quiero quieres quiere necesito muy más mas menos
ya también tambien
tampoco solo sólo todo toda todos todas otro otra otros otras cada algo nada alguien nadie algún alguno
alguna ningún ninguno ninguna tal mucho mucha muchos muchas poco tan tanto así asi aquí aqui allí alli ahí ahi
entonces luego pues bien hola gracias favor
""")

PORTUGUESE = _words("""
o a os as um uma uns umas de do da dos das em no na nos nas num numa ao aos à às pelo pela pelos pelas
por para com sem sobre entre até ate desde contra e ou mas nem porém porem que se como quando onde porque
porquê qual quais quem quanto quanta quantos quantas eu tu você voce vocês voces ele ela nós vós eles elas
me te lhe lhes vos meu minha meus minhas teu tua teus tuas seu sua seus suas nosso nossa nossos nossas
dele dela deles delas este esta estes estas esse essa esses essas isso isto aquele aquela aquilo
é e são sao sou somos ser foi foram era eram seja estar está esta estou estão estao estava tem têm tenho
ter tinha há ha haver não nao sim muito muita muitos muitas mais menos já ja também tambem só so ainda
todo toda todos todas outro outra cada algo nada alguém alguem ninguém ninguem pode posso podes podem
quero queres quer preciso fazer faz vai vou vamos aqui ali lá la então entao assim bem olá ola obrigado obrigada
""")

FRENCH = _words("""
le la les l un une des du de d au aux à a en dans sur sous pour par avec sans chez vers entre contre
pendant depuis jusque jusqu et ou où mais donc or ni car que qu qui quoi quel quelle quels quelles lequel
laquelle si comme quand comment pourquoi combien je j tu il elle on nous vous ils elles me m te t se s
moi toi lui leur leurs eux mon ma mes ton ta tes son sa ses notre nos votre vos ce c cet cette ces ceci
cela ça ca celui celle ceux celles est es suis sommes êtes etes sont été ete être etre était etait ai as
avons avez ont avoir avait fait faire peut peux pouvez puis veux veut voudrais voulez dois doit devons devez
doivent ne n pas plus
moins très tres trop aussi encore déjà deja toujours jamais rien tout toute tous toutes autre autres
chaque quelque quelques y là ici alors bien bonjour salut merci svp plaît plait
""")

GERMAN = _words("""
der die das den dem des ein eine einen einem einer eines kein keine keinen keinem keiner und oder aber
denn doch sondern sowie als wie wenn dass daß ob weil damit obwohl falls ich du er sie es wir ihr mich
mir dich dir sich uns euch ihm ihn ihnen mein meine meinen meinem meiner dein deine sein seine unser
unsere euer eure ihre ihren dieser diese dieses diesen diesem jener jene welche welcher welches wer wen
wem was wo wann warum wieso weshalb woher wohin ist bin bist sind seid war waren wäre ware gewesen sein
hat habe hast haben hatte hatten habt hätte wird werde wirst werden wurde wurden kann kannst können
konnen könnte konnte muss musst müssen mussen machen mache soll sollte will willst wollen möchte mochte darf mit von
zu zum zur bei nach aus auf für fur über uber unter vor hinter neben zwischen durch gegen ohne um an im
am ins vom beim nicht nichts auch noch schon nur sehr so hier da dort jetzt dann also mal ja nein bitte
danke hallo man etwas alle alles viel viele mehr
""")

ITALIAN = _words("""
il lo la i gli le l un uno una di d da in con su per tra fra a e ed o od ma però pero che chi cosa
come dove quando perché perche quale quali quanto quanta quanti quante se non né ne si mi ti ci vi
del dello della dei degli delle al allo alla ai agli alle dal dallo dalla dai dagli dalle nel nello
nella nei negli nelle sul sullo sulla sui sugli sulle col io tu lui lei noi voi loro mio mia miei mie
tuo tua tuoi tue suo sua suoi sue nostro nostra vostro vostra questo questa questi queste quello quella
quelli quelle è e sono sei siamo siete essere era erano stato stata ho hai ha abbiamo avete hanno avere
aveva posso puoi può puo possiamo potrebbe voglio vuoi vorrei devo deve anche ancora già gia più piu meno
molto molta molti molte poco tutto tutta tutti tutte ogni altro altra altri qualche niente nulla qui qua
lì li là allora poi così cosi bene ciao grazie prego favore
""")

DUTCH = _words("""
de het een en van in op te met voor aan door over bij naar uit om tot als dat die dit deze er hij zij ze
wij we jij je u ik mij me mijn jouw jou uw zijn haar hun hen ons onze is ben bent was waren wees geweest
heb hebt heeft hebben had hadden kan kun kunt kunnen kon zal zult zullen zou zouden wil wilt willen
wordt worden werd moet moeten mag mogen maar of want niet geen ook nog al wel dan toen wat wie waar hoe
waarom welke welk hier daar zo erg heel veel meer iets niets alles elke ieder men nu even hoi hallo
alstublieft alsjeblieft bedankt dank
""")

VIETNAMESE = _words("""
và va là la của cua các cac những nhung một mot có co không khong được duoc này nay đó do đây day kia ấy
ay tôi toi bạn ban em anh chị chi nó no họ ho chúng chung ta mình minh cho trong với voi từ tu đến den để
de thì thi mà ma nếu neu vì vi nên nen hay hoặc hoac như nhu khi đã da đang dang sẽ se rất rat làm lam gì
gi nào nao sao thế the ở o tại tai về ve sau trước truoc trên tren dưới duoi ra vào vao lên len xuống
xuong nhiều nhieu mọi moi hơn hon cũng cung chỉ đâu dau vậy vay lại lai rồi roi vẫn van còn con ai nhất
nhat nha nhé nhe nhỉ nhi ạ ơi oi đi di xin cảm cam ơn on bị bi muốn muon cần can phải phai
""")

INDONESIAN = _words("""
yang dan di ke dari ini itu dengan untuk pada adalah ialah dalam tidak tak akan juga atau ada saya aku
kamu anda engkau dia ia mereka kami kita bisa sudah belum sangat lebih karena jika kalau bagaimana apa
siapa mana kapan mengapa kenapa tersebut oleh sebagai seperti bahwa saja hanya masih harus bagi agar
supaya tetapi tapi namun lagi sini sana situ tolong mohon ya punya para sebuah seorang setiap semua
banyak beberapa antara tentang hingga sampai sejak sedang telah pernah mau ingin boleh dapat bila maka
lalu kemudian pun lah kah dong sih deh nih kok gimana gak nggak ga enggak terima kasih halo
""")

TURKISH = _words("""
ve ile bir bu şu su o da de ki mi mı mu mü ne için icin gibi kadar daha çok cok en ama fakat ya veya ise
eğer eger ben sen biz siz onlar beni bana seni sana onu ona bunu buna bunlar şey sey var yok değil degil
nasıl nasil neden niçin nicin nerede hangi kim her hiç hic sonra önce once olarak olan oldu olur lütfen
lutfen merhaba teşekkür tesekkur ederim misin mısın musun miyim nedir nelerdir göre gore ayrıca ayrica
ancak çünkü cunku tüm tum bütün butun bazı bazi diye yani benim senin onun bizim sizin
""")

POLISH = _words("""
i w we z ze na do nie to się sie że o a jak co jest czy po ale od za tak dla jego jej ich już juz tylko
przez może moze być byc ten ta te tym tego tej jestem jesteś jestes są sa był byl była byla było bylo mam
masz ma mnie mi ja ty on ona ono my wy oni one go mu nas was ci sobie bardzo także takze też tez lub albo
oraz ani gdy kiedy gdzie dlaczego jaki jaka jakie który ktory która ktora które ktore tu tam teraz
jeszcze bo więc wiec jednak pod nad przy bez przed między miedzy aby żeby zeby jeśli jesli proszę prosze
dziękuję dziekuje cześć czesc mogę moge możesz mozesz chcę chce można mozna mój moj moja twój twoj
""")

RUSSIAN = _words("""
и в во не что он на я с со как а то все всё она так его но да ты к у же вы за бы по только ее её мне
было вот от меня еще ещё нет о из ему теперь когда даже ну ли если уже или ни быть был него до вас
нибудь уж вам ведь там потом себя ничего ей может они тут где есть надо ней для мы тебя их чем была
сам чтоб без чего раз тоже себе под будет ж тогда кто этот того потому этого какой ним здесь этом
мой тем чтобы нее сейчас были куда зачем всех можно при об хоть после над больше тот через эти нас
про всего них какая много эту моя свою этой перед лучше том нельзя такой им более всегда между это
эта ваш ваша наш наша свой какие который которые которая также очень пожалуйста спасибо привет
здравствуйте почему откуда сколько хочу нужно
""")

# Scripts other than Latin and Cyrillic: no English collisions are possible. Hindi, Persian and Arabic write
# their function words apart; Arabic and Persian also join some to the next word ("والبنك": and-the-bank), which
# no list can undo. Korean writes particles onto their word ("비밀번호를"); the list holds the words that
# stand alone (question words, pronouns, "please", "thank you" and the forms of 있다 / 하다 a request ends with).
HINDI = _words("""
है हैं था थी थे हो होता होती होते हूँ हूं कर करना करें करो करके कैसे क्या क्यों कब कहाँ कहां कौन किस किसी
कोई कुछ और या लेकिन पर में से को का की के ने तो भी ही यह ये वह वे इस उस इन उन मैं मुझे मेरा मेरी मेरे
हम हमें हमारा हमारी तुम आप आपका आपकी आपके अपना अपनी अपने नहीं न जो जब तक एक बहुत कृपया धन्यवाद नमस्ते
चाहिए चाहता चाहती सकता सकती सकते रहा रही रहे गया गई गए
""")
ARABIC = _words("""
في من إلى الى على عن مع هذا هذه ذلك تلك التي الذي الذين هو هي هم أنا انا أنت انت نحن كيف ماذا لماذا متى
أين اين هل ما لا لم لن إن ان أن أو او ثم كان كانت يكون قد كل بعض أي اي عند بين حتى إذا اذا لو لي لك له
لها لنا يا فضلك شكرا مرحبا السلام عليكم أريد اريد يمكن
""")
PERSIAN = _words("""
و در به از که این آن با برای را است هست بود یک تا هم اما یا چه چرا چطور چگونه کجا کی من تو او ما
شما آنها لطفا ممنون سلام خیلی می نمی هستم هستید دارم دارید کنم کنید باید
""")
KOREAN = _words("""
그리고 그러나 하지만 그런데 또는 및 어떻게 무엇 뭐 왜 언제 어디 누구 어느 이것 그것 저것 여기 거기 저기
나 저 제 내 우리 저희 너 당신 좀 너무 정말 매우 아주 수 것 거 등 때 더 안 못 있다 있어 있어요 있나요
있습니까 없다 없어요 하다 해 해요 해주세요 주세요 합니다 하는 하고 해서 감사합니다 고맙습니다 안녕하세요
제가 저는 나는 내가 싶어요 싶습니다
""")

# "Help me", "tell me", "can you" of each language: the counterparts of English "help", "tell", "want" in
# `phrases.FILLERS`, which a multilingual review saw as whole names ("Подскажите", "helfen", "하나요").
REQUEST_WORDS = _words("""
подскажите помогите помочь скажите расскажите можете helfen hilfe aider aidez ayudar ayuda ayúdame ayudame
ajuda ajudar aiutare aiuto aiutami ساعدوني ساعدني मदद बताइए बताओ बताएं करूं करूँ 하나요 알려주세요 도와주세요
""")

LANGUAGES = {"spanish": SPANISH, "portuguese": PORTUGUESE, "french": FRENCH, "german": GERMAN,
             "italian": ITALIAN, "dutch": DUTCH, "vietnamese": VIETNAMESE, "indonesian": INDONESIAN,
             "turkish": TURKISH, "polish": POLISH, "russian": RUSSIAN, "hindi": HINDI, "arabic": ARABIC,
             "persian": PERSIAN, "korean": KOREAN, "requests": REQUEST_WORDS}

# Function words of the languages above that are common English content words: they stay possible names
# and keywords (see the module docstring). Words that are English function words are absent: the English
# list drops them anyway.
ENGLISH_COLLISIONS = _words("""
son era hay solo sin sea tan favor soy todo algo con sue come dove ci io col car par pour plus ton sans
comment pendant encore ai die bin war hat mit man uber fur falls ware dir door men want heel hen met bent
wilt sim nas os num eu ate ban day rat van roi chi tai den cam len bi apa mana pun halo var gore ale pod jest
com pan red fin
vi dos ada po ca ga ta em dal mag
""")  # (the last line, a review: vi, DoS/MS-DOS, Ada, PO, CA, GA, TA, the CSS em, dal, mag; "para", "mi" and
#               "va" stay stop words: "for", "my" and "and" of the commonest languages here outweigh para-, mi, VA)

FOREIGN_FUNCTION_WORDS = frozenset().union(*LANGUAGES.values())
FOREIGN_STOP_WORDS = FOREIGN_FUNCTION_WORDS - ENGLISH_COLLISIONS
