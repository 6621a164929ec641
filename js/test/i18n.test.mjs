// The runtime's own words: every Japanese entry keeps its English template's
// {fields}, an English page gets the English text, a Japanese page the table's.
import test from "node:test";
import assert from "node:assert/strict";
import { JA, t, pageLanguage } from "../src/i18n.js";

const fields = (s) => (s.match(/\{\w+\}/g) || []).slice().sort();

test("every Japanese entry keeps the {fields} of its English template", () => {
  const broken = Object.entries(JA).filter(([en, ja]) => JSON.stringify(fields(en)) !== JSON.stringify(fields(ja)));
  assert.deepEqual(broken, []);
});

test("t fills the template in the page's language", () => {
  const tpl = "{label}: diverged at step {step}";
  assert.equal(t(tpl, { label: "Adam", step: 12 }, "en"), "Adam: diverged at step 12");
  assert.equal(t(tpl, { label: "Adam", step: 12 }, "ja"), "Adam：ステップ 12 で発散");
  assert.equal(t("no such entry {x}", { x: 1 }, "ja"), "no such entry 1");
});

test("the language comes from <html lang>", () => {
  const doc = (lang) => ({ documentElement: { lang } });
  assert.equal(pageLanguage(doc("ja")), "ja");
  assert.equal(pageLanguage(doc("ja-JP")), "ja");
  assert.equal(pageLanguage(doc("en")), "en");
  assert.equal(pageLanguage(doc("")), "en");
  assert.equal(pageLanguage(null), "en");
});
