// The words the runtime writes itself (readouts, "diverged", axis words,
// menu names), in the page's language.  Everything else a figure shows comes
// from its spec, which the Japanese build has already translated
// (locales/ja/LC_MESSAGES/figures.po, scripts/book_i18n.py).
//
// t(template, values): the template is the English text with {name} fields;
// on a page whose <html lang> starts with "ja" the Japanese entry of JA
// replaces it (same fields; js/test/i18n.test.mjs checks that every entry
// keeps them).  An English page gets the English template, filled in.

export const JA = {
  "{label}: diverged at step {step}": "{label}：ステップ {step} で発散",
  "{label}: f − f* after {steps} steps = {value}": "{label}：{steps} ステップ後の f − f* = {value}",
  "diverged (step {step})": "発散（ステップ {step}）",
  "diverged": "発散",
  "step t": "ステップ t",
  "loss against steps": "ステップに対する損失",
  "optimizer paths on {title}": "{title} 上のオプティマイザの軌跡",
  "landscape": "目的関数",
  "{text}: {note}": "{text}：{note}",
  // phase diagram (heavy ball)
  "diverges": "発散",
  "critically damped": "臨界減衰",
  "under-damped (oscillates)": "減衰不足（振動する）",
  "under-damped": "減衰不足",
  "over-damped": "過減衰",
  "NAG limit": "NAG の安定限界",
  "Nesterov stable": "Nesterov は安定",
  "Nesterov diverges": "Nesterov は発散",
  "heavy ball on a quadratic: η λ and β": "二次関数上の heavy-ball：η λ と β",
  "steep direction (η L = {a}): {region}; flat direction (η μ = {b}): {flat}; {nag}.":
    "急な方向（η L = {a}）：{region}。平坦な方向（η μ = {b}）：{flat}。{nag}。",
  "phase diagram of heavy-ball momentum: eta times lambda against beta; click or drag to choose":
    "heavy-ball モーメンタムの位相図：横軸 η λ、縦軸 β。クリックまたはドラッグで選ぶ",
  // schedule figure (noisy quadratic model)
  "{label} schedule": "スケジュール：{label}",
  "{label}: peak η = {peak}, warmup {warm} steps": "{label}：最大学習率 η = {peak}、ウォームアップ {warm} ステップ",
  ", {cooldown} cooldown {cool} steps": "、クールダウン（{cooldown}）{cool} ステップ",
  ", final η {end}": "、最終 η {end}",
  ", noise σ = {noise}, {steps} steps": "、ノイズ σ = {noise}、{steps} ステップ",
  "{label}: expected loss at step {mid} = {a}, after {steps} steps = {b}":
    "{label}：ステップ {mid} での期待損失 = {a}、{steps} ステップ後 = {b}",
  "constant η": "一定の η",
  "loss": "損失",
  "constant": "一定",
  "cooldown (WSD)": "クールダウン（WSD）",
  "final η": "最終 η",
  "learning rate against steps": "ステップに対する学習率",
  "expected loss against steps": "ステップに対する期待損失",
  "expected loss (noisy quadratic)": "期待損失（ノイズのある二次モデル）",
  // stored runs
  "{x} {value}: {count} of {seeds} seeds diverged": "{x} {value}：{seeds} シード中 {count} シードが発散",
  "{label}: no {x} where every seed finished": "{label}：すべてのシードが完走した {x} はない",
  "{label}: lowest {what}{value}": "{label}：最小の{what}{value}",
  " at {x} = {value}": "（{x} = {value}）",
  "seed {seed} diverged at {x} {value}": "シード {seed} は {x} {value} で発散",
  "{label}: every seed diverged (first at {x} {value})": "{label}：全シードが発散（最初は {x} {value}）",
  "{label}: diverged at {x} {value}": "{label}：{x} {value} で発散",
  "{label}: final {what}{value}": "{label}：最終的な{what}{value}",
  " ({range}) over {count} seeds": "（{count} シードで {range}）",
  " (mean {value})": "（平均 {value}）",
  " [at {x}]": " [{x} での値]",
  "{title}: use the arrow keys to read the stored values": "{title}：矢印キーで保存済みの値を読める",
  // heatmap
  "{panel}, {where}: every seed diverged": "{panel}、{where}：全シードが発散",
  ", {count} of {seeds} seeds diverged": "、{seeds} シード中 {count} シードが発散",
  "{panel}, {where}: {value} mean {mean}{spread}; seeds {list}{lost}": "{panel}、{where}：{value}の平均 {mean}{spread}。各シード {list}{lost}",
  "div.": "発散",
  "best of {text}": "最良：{text}",
  "{panel}: no cell where every seed finished": "{panel}：すべてのシードが完走したセルはない",
  "{title}; ": "{title}。",
  "selected {x} = {xv}, {y} = {yv}": "選択中：{x} = {xv}、{y} = {yv}",
  " (click a cell to draw its curves)": "（セルをクリックすると曲線を描く）",
  "{panel}: {value} over {x} and {y}; arrow keys move between cells, Enter selects":
    "{panel}：{x} と {y} に対する {value}。矢印キーでセルを移動し、Enter で選ぶ",
  // scalar map
  "after {steps} step: {marks}": "{steps} ステップ後：{marks}",
  "after {steps} steps: {marks}": "{steps} ステップ後：{marks}",
  "smallest s reaching {threshold}: ": "{threshold} に達する最小の s：",
  "none on the axis": "軸上になし",
  "overflows from s = {s}": "s = {s} 以上でオーバーフロー",
  "largest value: {v} at s = {s} (overshoot {over})": "最大値：s = {s} で {v}（行き過ぎ {over}）",
  "no step (k = 0: s itself); grey lines at 1 and at {threshold}": "ステップなし（k = 0：s そのもの）。灰色の線は 1 と {threshold}",
  "{y} against {x} (log axis)": "{x} に対する {y}（対数軸）",
  "custom": "カスタム",
};

/** "ja" on a page whose <html lang> is Japanese, else "en". */
export function pageLanguage(doc = typeof document !== "undefined" ? document : null) {
  const lang = (doc && doc.documentElement && doc.documentElement.lang) || "";
  return lang.toLowerCase().startsWith("ja") ? "ja" : "en";
}

/** The template in the page's language, its {name} fields filled from `values`. */
export function t(template, values = {}, lang = pageLanguage()) {
  const text = lang === "ja" && template in JA ? JA[template] : template;
  return text.replace(/\{(\w+)\}/g, (m, k) => (k in values ? String(values[k]) : m));
}
