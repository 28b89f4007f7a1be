"""The demo's voices and sentences: who speaks (espeak-ng voice, pitch, rate), in which
subset, and what they say (Korean daily talk; the OOD split's hosts, guests and crowd)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# ---------------------------------------------------------------------------------------------
# Speakers and sentences


@dataclass(frozen=True)
class Speaker:
    """A fixed synthetic voice: espeak variant plus pitch (0-99), pitch range (0-99), rate (wpm)."""

    name: str
    variant: str
    pitch: int
    pitch_range: int
    rate: int

    def voice(self, lang: str) -> str:
        """The espeak voice name, e.g. ``ko+m3``."""
        return f"{lang}+{self.variant}"


TRAIN_SPEAKERS: tuple[Speaker, ...] = (
    Speaker("spk01", "m1", 35, 40, 160),
    Speaker("spk02", "m3", 55, 65, 185),
    Speaker("spk03", "m6", 42, 30, 150),
    Speaker("spk04", "klatt4", 62, 55, 175),
    Speaker("spk05", "f1", 45, 55, 170),
    Speaker("spk06", "f2", 62, 80, 195),
    Speaker("spk07", "f4", 35, 40, 155),
    Speaker("spk08", "grandma", 50, 60, 140),
)
"""Voices of the train subset."""

HELDOUT_SPEAKERS: tuple[Speaker, ...] = (
    Speaker("spk09", "m7", 50, 55, 175),
    Speaker("spk10", "m2", 28, 35, 160),
    Speaker("spk11", "f5", 55, 65, 180),
    Speaker("spk12", "f3", 40, 70, 165),
)
"""Voices of dev and test (shared by both, disjoint from train)."""

SPEAKERS: tuple[Speaker, ...] = TRAIN_SPEAKERS + HELDOUT_SPEAKERS
SUBSET_SPEAKERS: Mapping[str, tuple[Speaker, ...]] = {
    "train": TRAIN_SPEAKERS,
    "dev": HELDOUT_SPEAKERS,
    "test": HELDOUT_SPEAKERS,
}

# (espeak language, text): Korean daily conversation, with a little English.
SENTENCES: tuple[tuple[str, str], ...] = (
    ("ko", "안녕하세요, 오늘 날씨가 정말 좋네요."),
    ("ko", "점심 뭐 먹을까요?"),
    ("ko", "어제 그 드라마 봤어요? 진짜 재미있던데요."),
    ("ko", "저는 김치찌개가 먹고 싶어요."),
    ("ko", "주말에 뭐 할 거예요?"),
    ("ko", "지하철이 너무 붐벼서 힘들었어요."),
    ("ko", "커피 한잔 하실래요?"),
    ("ko", "요즘 회사 일이 너무 많아서 피곤해요."),
    ("ko", "내일 아침 아홉 시에 만나요."),
    ("ko", "그거 어디서 샀어요? 예쁘네요."),
    ("ko", "아, 맞다. 엄마한테 전화해야 돼."),
    ("ko", "비가 올 것 같으니까 우산 챙기세요."),
    ("ko", "이번 여름 휴가는 제주도로 가려고요."),
    ("ko", "강아지 산책시키러 공원에 갔다 왔어요."),
    ("ko", "시험 공부는 잘 되고 있어?"),
    ("ko", "그 식당 진짜 맛있어. 다음에 같이 가자."),
    ("ko", "잠깐만요, 지갑을 집에 두고 왔어요."),
    ("ko", "요즘 운동을 시작했는데 생각보다 재밌어요."),
    ("ko", "오늘은 일찍 자야겠다."),
    ("ko", "버스 몇 번 타면 돼요?"),
    ("ko", "생일 축하해! 선물은 마음에 들어?"),
    ("ko", "냉장고에 우유가 다 떨어졌어."),
    ("ko", "아이들이 학교에서 돌아올 시간이에요."),
    ("ko", "이 노래 제목이 뭐였지?"),
    ("ko", "괜찮아요, 천천히 하세요."),
    ("ko", "택시 불러 줄까요?"),
    ("ko", "그래서 결국 어떻게 됐어?"),
    ("ko", "다음 주 월요일까지 보고서를 내야 해요."),
    ("ko", "배고프다. 라면이라도 끓여 먹을까?"),
    ("ko", "감기 조심하세요. 요즘 날씨가 추워요."),
    ("ko", "진짜? 나 그 얘기 처음 들어."),
    ("ko", "오랜만이에요! 그동안 잘 지냈어요?"),
    ("ko", "영화 시작하기 전에 팝콘 사 올게."),
    ("ko", "길이 많이 막혀서 조금 늦을 것 같아요."),
    ("ko", "할머니 댁에 언제 갈 거야?"),
    ("ko", "이 옷 좀 입어 봐도 될까요?"),
    ("ko", "저녁에 같이 장 보러 가요."),
    ("ko", "음, 글쎄요. 잘 모르겠어요."),
    ("ko", "고마워요. 덕분에 살았어요."),
    ("ko", "네, 알겠습니다. 그렇게 할게요."),
    ("ko", "휴대폰 배터리가 거의 다 됐어."),
    ("ko", "방 청소는 내가 할게, 설거지는 네가 해."),
    ("en-us", "Okay, sounds good to me."),
    ("en-us", "Wait, what did you say?"),
    ("en-us", "Let's grab some coffee later."),
)


@dataclass(frozen=True)
class OodSpeaker(Speaker):
    """A voice of the OOD split, speaking one language: the sentences ``OOD_SENTENCES[lang]``."""

    lang: str = "ko"

    @property
    def espeak_voice(self) -> str:
        """The espeak voice name, e.g. ``ja+m8``."""
        return self.voice(self.lang)


OOD_HOSTS: tuple[OodSpeaker, ...] = (
    OodSpeaker("ood01", "m4", 44, 50, 168),
    OodSpeaker("ood02", "klatt3", 58, 45, 190),
    OodSpeaker("ood03", "Annie", 48, 60, 172),
    OodSpeaker("ood04", "aunty", 38, 35, 150),
)
"""Korean speakers of the OOD split: variants, pitches and rates that the demo split never uses."""

OOD_GUESTS: tuple[OodSpeaker, ...] = (
    OodSpeaker("ood05", "m8", 52, 60, 160, lang="ja"),
    OodSpeaker("ood06", "belinda", 55, 70, 178, lang="en-gb-scotland"),
)
"""Other-language speakers of the OOD split: one of them joins every OOD conversation."""

OOD_SPEAKERS: tuple[OodSpeaker, ...] = OOD_HOSTS + OOD_GUESTS

OOD_CROWD: tuple[OodSpeaker, ...] = (
    OodSpeaker("crowd1", "klatt", 45, 50, 180, lang="es"),
    OodSpeaker("crowd2", "linda", 50, 55, 175, lang="es"),
    OodSpeaker("crowd3", "adam", 40, 45, 185, lang="es"),
)
"""The distant crowd of the OOD background noise (never annotated)."""

OOD_LANGUAGES: Mapping[str, str] = {
    "ko": "Korean",
    "ja": "Japanese",
    "en-gb-scotland": "Scottish English",
    "es": "Spanish",
}

OOD_SENTENCES: Mapping[str, tuple[str, ...]] = {
    "ko": (  # an office meeting
        "자, 그럼 회의를 시작하겠습니다.",
        "지난주에 말씀드린 자료 보셨어요?",
        "이 부분은 다시 한번 확인해 볼게요.",
        "예산이 조금 부족할 것 같은데요.",
        "다음 일정은 언제로 잡을까요?",
        "저도 그 의견에 동의합니다.",
        "발표 자료는 제가 준비하겠습니다.",
        "혹시 질문 있으신 분 계세요?",
        "오늘 회의는 여기까지 하겠습니다.",
        "고객 반응이 생각보다 좋았어요.",
        "잠깐 쉬었다가 다시 할까요?",
        "메일로 정리해서 보내 드릴게요.",
    ),
    "ja": (  # kana only: espeak-ng spells kanji out
        "おはようございます、きょうもよろしくおねがいします。",
        "すみません、もういちどいってもらえますか。",
        "それはいいアイデアですね。",
        "ちょっとまってください、いましりょうをみています。",
        "あしたのかいぎはなんじからですか。",
        "わたしもそうおもいます。",
        "コーヒーをのみにいきませんか。",
        "えきまでどのくらいかかりますか。",
        "ありがとうございます、たすかりました。",
        "そのけんについてはあとでれんらくします。",
        "きのうはあめがすごかったですね。",
        "なるほど、よくわかりました。",
    ),
    "en-gb-scotland": (
        "Right, shall we get started then?",
        "Sorry, could you say that again?",
        "I think the numbers look fine to me.",
        "Let me check the schedule for next week.",
        "That sounds like a good plan.",
        "Hang on, I'm just opening the document.",
        "Who is taking the notes today?",
        "We should send them an update by Friday.",
        "I'm not sure that will work, to be honest.",
        "Thanks, that's really helpful.",
        "Can we come back to that point later?",
        "The train was late again this morning.",
    ),
    "es": (  # the crowd
        "¿Has visto el partido de anoche?",
        "Yo creo que va a llover esta tarde.",
        "Mañana tengo que trabajar temprano.",
        "¡Qué bonito está el parque hoy!",
        "Vamos a pedir otra ronda de cafés.",
        "No me acuerdo de su nombre.",
        "Mi hermana vive cerca de la playa.",
        "Claro que sí, no hay problema.",
    ),
}
