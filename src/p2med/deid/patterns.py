"""The identifier patterns of Chinese (and English) clinical text, shared by the scrubber and the verifier.

身份证 numbers (18 characters: region, birth date, sequence and a GB 11643-1999 check character, which is
not required to be right: a mistyped copy still identifies), mobile and landline numbers, labelled record
numbers (住院号 门诊号 病案号 床号 ...), e-mail, labelled and written-out addresses, and the cues that show a
person's name (患儿X, 母亲X, X医生, X主治医师, Dr. X). What it does not know: the patient's own identifiers
(``text.Scrubber`` gets those from the export). Every pattern runs on normalised text (``normalise``): full-width
forms folded to ASCII, spaces inside digit runs removed. Example: ``id_number_valid("11010520210302124X")``.
"""

from __future__ import annotations

import re

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"

HAN = r"\u4e00-\u9fff"
# ASCII letters and digits must not touch a matched number (so hex pseudonyms and UIDs never match)
NB = r"(?<![0-9A-Za-z])"
NA = r"(?![0-9A-Za-z])"

# a 身份证 number's shape: region, birth date, sequence, check character. Scrubbed and reported whether its check
# character is right or not: a copy with one digit mistyped still tells a birth date and most of the number (a
# 700-patient synthetic hospital's edited near-duplicate records carried such copies of planted numbers)
ID_NUMBER = re.compile(NB + r"\d{6}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx]" + NA)
# a labelled one: the label and the number may each carry a typo (身份热号：1粗0105...: an edited copy of a record)
ID_LABELLED = re.compile(r"(?:身份[证\u4e00-\u9fff]?(?:号码|号)|身份证|证件号(?:码)?|ID\s*(?:card\s*)?No\.?)\s*[:：]?\s*"
                         r"(?:为|是)?\s*([0-9Xx*](?:[0-9Xx*]|[^\s0-9A-Za-z。，；;,、：:](?=[0-9Xx*])){14,18})" + NA, re.I)
MOBILE = re.compile(NB + r"(?:\+?86-?)?1[3-9]\d(?:-?\d){8}" + NA)
LANDLINE = re.compile(NB + r"(?:\(0\d{2,3}\)|0\d{2,3}-)\d{7,8}(?:-\d{1,5})?" + NA)
PHONE_LABELLED = re.compile(r"(?:联系电话|电话号码|电话|手机号码|手机号|手机|联系方式|Tel\.?|Phone|Mobile)\s*[:：]?\s*"
                            r"([+\d][\d\-() ]{5,18}\d)", re.I)
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
RECORD_LABELS = ("住院号", "门诊号", "病案号", "病历号", "床号", "登记号", "就诊号", "就诊卡号", "卡号", "医保卡号",
                 "医保号", "检查号", "影像号", "放射号", "申请单号", "流水号", "ID号", "患者ID", "病人ID", "病历ID",
                 "MRN", "Patient ID", "Medical Record Number", "Medical Record No", "Accession Number",
                 "Accession No", "Bed No")
RECORD_LABELLED = re.compile(
    "(" + "|".join(sorted((re.escape(x) for x in RECORD_LABELS), key=len, reverse=True)) + r")\s*[:：#]?\s*(?:为|是)?\s*"
    r"([A-Za-z]{0,4}\d[A-Za-z0-9\-]*)", re.I)
BED = re.compile(r"(?<![\d])\d{1,3}\s*床(?![旁边上头])")
ADDRESS_LABELLED = re.compile(r"(?:现住址|家庭住址|户籍地址|联系地址|居住地址|住址|地址|Address)\s*[:：]\s*([^。；;，,\n]{4,80})",
                              re.I)
ADDRESS = re.compile(rf"(?:[{HAN}]{{2,8}}?(?:省|自治区|市|区|县|镇|乡))*[{HAN}]{{2,4}}(?:路|街|大道|巷|弄|胡同)"
                     rf"\d{{1,5}}号(?:[{HAN}A-Za-z]{{0,10}}?\d{{1,5}}(?:栋|幢|号楼|单元|层|楼|室|号))*")

# the most common Chinese surnames (compound ones first: they are matched before single characters)
COMPOUND_SURNAMES = ("欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒",
                     "夏侯", "轩辕", "令狐", "端木", "南宫", "独孤", "西门", "万俟")
SURNAMES = set(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董潘袁蔡蒋余于杜叶程魏苏吕丁任卢姚沈钟姜"
    "崔谭陆范汪廖石金韦贾夏付方邹熊白孟秦邱侯江尹薛闫段雷龙黎史陶贺毛郝顾龚邵万覃武钱戴严莫孔向常汤康易乔赖文"
    "施洪牛樊葛邢安齐伍庞颜倪温芦俞章鲁柴耿涂关祝甘鲍纪申翟殷宁连包左苗费季滕焦柳欧管")
# surnames that also start everyday clinical words (易哭闹, 安静, 常规, 白细胞...): after 患儿/母亲-style cues they are
# not taken as names (the patient's own name is still removed through the export's dictionary)
WORDY_SURNAMES = set("易安常向文包甘关连季万宁齐牛施洪武孔平时白方左申付康于钱严龙全明管石金江毛史")
# characters that do not belong to a given name (function words, time, clinical verbs), so a cue's name stops there
STOP = set("的了是在有无未于与及和或等因为出现伴今昨前后日月年时分次岁天周内外上下左右双其之诉述代陪来到就诊院科"
           "住入门急查房检示某系患儿病人以自近反既仍已曾均并且若即将被由从向对把给让说称及、，。；：,.;: ")
# words that start with a surname character but are not names (a cue followed by one of them is not a name)
NOT_NAMES = {"高热", "高烧", "高峰", "黄疸", "白天", "白细胞", "周岁", "周前", "何时", "方可", "常有", "常规", "时有",
             "全身", "安静", "安睡", "平素", "平时", "马上", "明显", "管床", "主管", "经治", "值班", "上级", "齐全",
             "程度", "金额", "江河", "文化", "关节", "石膏", "包括", "甘露", "龙胆", "毛细", "严重", "连续", "季节",
             "万古", "钱币", "史料", "温度", "夏季", "秦艽", "陈述", "武汉", "孔隙", "施行", "洪水", "牛奶", "宁静"}
PREFIX_CUES = ("患儿", "患者", "病人", "病儿", "其母", "其父", "母亲", "父亲", "爸爸", "妈妈", "爷爷", "奶奶", "外公",
               "外婆", "姥姥", "姥爷", "家长", "监护人", "代诉人", "联系人", "签名", "记录者", "记录人", "报告医生",
               "审核医生", "检查医生", "申请医生", "报告医师", "审核医师", "医师", "医生", "护士")
SUFFIX_CUES = ("副主任医师", "主任医师", "主治医师", "住院医师", "医师", "医生", "护士长", "护士", "主任", "教授", "大夫")
# lookaheads, so overlapping cues (其母亲 holds 其母 and 母亲) are all seen; group 1 is the cue and its colon
PREFIX_CUE = re.compile("(?=((?:" + "|".join(sorted(PREFIX_CUES, key=len, reverse=True)) + r")\s*[:：]?\s*))")
SUFFIX_CUE = re.compile("(?=(" + "|".join(sorted(SUFFIX_CUES, key=len, reverse=True)) + "))")
# what may follow a name written after a cue: punctuation, the end, or a word that starts the sentence's verb
AFTER_NAME = set("，,。；;、：:（()）[]【】 \n男女代陪诉述查主之的及和与同在因于以来诊")
EN_NAME = re.compile(r"(?<![A-Za-z])(Dr|Mr|Mrs|Ms|Miss|Prof|Doctor|Nurse)\.?\s+([A-Z][a-z]+(?:[\s-][A-Z][a-z]+)?)")


def id_checksum(first17: str) -> str:
    """GB 11643-1999 check character for the first 17 digits of a 身份证 number."""
    return ID_CHECK[sum(int(c) * w for c, w in zip(first17, ID_WEIGHTS)) % 11]


def id_number_valid(number: str) -> bool:
    number = number.upper()
    return (len(number) == 18 and number[:17].isdigit() and number[17] in "0123456789X"
            and id_checksum(number[:17]) == number[17])



def normalise(text: str) -> tuple[str, list[int]]:
    """Fold full-width forms (０-９ Ａ-Ｚ ：etc.) to ASCII and drop whitespace inside digit runs.

    Returns the normalised text and, per character of it, its index in ``text`` (to map matches back).
    """
    chars: list[str] = []
    index: list[int] = []
    n = len(text)
    for i, ch in enumerate(text):
        o = ord(ch)
        if 0xFF01 <= o <= 0xFF5E:
            ch = chr(o - 0xFEE0)
        elif ch in "\u3000\u00a0":
            ch = " "
        if ch.isspace() and chars and chars[-1].isdigit():
            j = i + 1
            while j < n and text[j].isspace():
                j += 1
            if j < n and _fold(text[j]).isdigit():
                continue
        chars.append(ch)
        index.append(i)
    return "".join(chars), index


def _fold(ch: str) -> str:
    o = ord(ch)
    return chr(o - 0xFEE0) if 0xFF01 <= o <= 0xFF5E else ch


def surname_of(name: str) -> str:
    """The surname of a Chinese full name (compound surnames known; else the first character)."""
    for s in COMPOUND_SURNAMES:
        if name.startswith(s) and len(name) > len(s):
            return s
    return name[:1]


def is_han(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff"
