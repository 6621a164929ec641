"""The Japanese glossary's order (issue 25): 五十音 order of the readings.

``scripts/book_i18n.py`` sorts the Japanese site's glossary by the reading
of each entry's Japanese term. Checked here without a build:

* ``gojuon_key`` against the rules of a Japanese dictionary (JIS X 4061):
  あ行 before か行, a voiced kana right after its plain one but only as a
  tie-break (がか before かき, which code-point order gets wrong), the long
  vowel mark read as the vowel before it, katakana and hiragana alike;
* ``reading`` of every Japanese term of book/glossary.md against a
  reading written down here by hand (a Japanese reader's, not Janome's);
* bad input (a term with no kana reading) fails with a clear message.

The built page is checked in tests/build/test_glossary_page.py.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import book_i18n  # noqa: E402
import build_book  # noqa: E402

key = book_i18n.gojuon_key


def test_a_row_before_ka_row():
    assert key("アイ") < key("カ") < key("サ") < key("ン")
    assert key("いか") < key("かい")
    assert sorted(["ナ", "タ", "ア", "ワ", "ハ", "カ"], key=key) == list("アカタナハワ")


def test_voiced_kana_after_its_plain_one():
    assert key("カ") < key("ガ") < key("キ")
    assert key("ハ") < key("バ") < key("パ") < key("ヒ")
    # voicing only breaks ties: がか before かき (code points say かき first)
    assert key("ガカ") < key("カキ")
    assert key("ガクシュウ") < key("カクリツ")
    assert key("カガク") < key("ガクシュウ")


def test_long_vowel_mark_is_the_vowel_before_it():
    # モーメント reads モオメント: before モカ (code points put ー after every kana)
    assert key("モウ") < key("モーメント") < key("モカ")
    assert key("クローバ")[0] == "クロオハ"
    assert key("ハアト") < key("ハート") < key("ハイ")  # written vowel first
    with pytest.raises(ValueError, match="long vowel mark"):
        key("ーア")


def test_small_kana_sort_as_full_size_after_it():
    assert key("シヨウ") < key("ショウ") < key("シヨウカ")
    assert key("ハツカ") < key("ハッサン") < key("ハツチ")


def test_katakana_and_hiragana_are_alike():
    assert key("ばっち") == key("バッチ")
    assert key("こうばい") == key("コウバイ")
    with pytest.raises(ValueError, match="not a kana"):
        key("カA")


# Each Japanese term of the glossary and its reading, written by hand.
READINGS = {
    "1次モーメント": "イチジモーメント", "2次モーメント": "ニジモーメント",
    "2次情報": "ニジジョウホウ", "L2正則化": "エルツーセイソクカ",
    "ウォームアップ": "ウォームアップ", "オプティマイザ": "オプティマイザ",
    "オーバーシュート": "オーバーシュート", "クロネッカー積": "クロネッカーセキ",
    "グローバルノルム": "グローバルノルム", "コサイン減衰": "コサインゲンスイ",
    "シャーディング": "シャーディング", "スペクトルノルム": "スペクトルノルム",
    "データ並列": "データヘイレツ", "ドロップアウト": "ドロップアウト",
    "ニュートン・シュルツ反復": "ニュートン・シュルツハンプク", "ノイズ": "ノイズ",
    "ハイパーパラメータ": "ハイパーパラメータ", "バイアス補正": "バイアスホセイ",
    "バッチサイズ": "バッチサイズ", "バッチ正規化": "バッチセイキカ",
    "ファインチューニング": "ファインチューニング", "ミニバッチ": "ミニバッチ",
    "メモリ効率化": "メモリコウリツカ", "モデルパラメータ": "モデルパラメータ",
    "モーメンタム": "モーメンタム", "モーメンタム係数": "モーメンタムケイスウ",
    "不偏推定量": "フヘンスイテイリョウ", "事前訓練": "ジゼンクンレン",
    "低ランク近似": "テイランクキンジ", "停滞": "テイタイ", "先読み": "サキヨミ",
    "前処理行列": "マエショリギョウレツ", "勾配クリッピング": "コウバイクリッピング",
    "勾配消失": "コウバイショウシツ", "勾配爆発": "コウバイバクハツ",
    "収束": "シュウソク", "大バッチ訓練": "ダイバッチクンレン",
    "学習率": "ガクシュウリツ", "学習率スケジューリング": "ガクシュウリツスケジューリング",
    "局所解": "キョクショカイ", "慣性": "カンセイ", "指数移動平均": "シスウイドウヘイキン",
    "振動": "シンドウ", "損失地形": "ソンシツチケイ", "損失関数": "ソンシツカンスウ",
    "摩擦係数": "マサツケイスウ", "数値安定性": "スウチアンテイセイ",
    "暗黙の正則化効果": "アンモクノセイソクカコウカ", "曲率": "キョクリツ",
    "更新則": "コウシンソク", "最適化問題": "サイテキカモンダイ",
    "条件数": "ジョウケンスウ", "極分解": "キョクブンカイ", "正則化": "セイソクカ",
    "汎化": "ハンカ", "減衰率": "ゲンスイリツ", "異方性": "イホウセイ",
    "発散": "ハッサン", "確率的勾配降下法": "カクリツテキコウバイコウカホウ",
    "稀少特徴": "キショウトクチョウ", "符号ベース": "フゴウベース",
    "線形スケーリング則": "センケイスケーリングソク", "速度": "ソクド",
    "過学習": "カガクシュウ", "適応的学習率": "テキオウテキガクシュウリツ",
    "非凸性": "ヒトツセイ", "鞍点": "アンテン", "頻出特徴": "ヒンシュツトクチョウ",
    "高次元": "コウジゲン",
}


def test_every_glossary_term_has_its_reading():
    terms = build_book.glossary_terms_ja()
    assert set(terms) == set(READINGS), "a glossary term without a reading here"
    wrong = {t: book_i18n.reading(t) for t in terms
             if book_i18n.reading(t) != READINGS[t]}
    assert not wrong, f"readings that differ from the hand-written ones: {wrong}"


def test_a_term_without_a_kana_reading_is_refused():
    with pytest.raises(ValueError, match="no kana reading for 'AMSGrad'.*KANA_READINGS"):
        book_i18n.reading("AMSGrad")
    with pytest.raises(ValueError, match="empty"):
        book_i18n.reading("  ")


def test_kana_entries_first_then_latin_ones_a_to_z():
    key_ = book_i18n.glossary_sort_key
    entries = [(None, "ZeRO"), ("学習率", "learning rate"), (None, "all-reduce"),
               ("鞍点", "saddle point"), (None, "AMSGrad"), ("2次モーメント", "second moment")]
    ordered = [ja or en for ja, en in sorted(entries, key=lambda e: key_(*e))]
    assert ordered == ["鞍点", "学習率", "2次モーメント", "all-reduce", "AMSGrad", "ZeRO"]
