// The runtime against the spec schema (code/optbook/figures/spec.schema.json).
// Run with `npm test` (node --test js/test); tests/test_figure_schema.py runs it too.
//
// * every top-level key a kind's runtime modules read (`spec.<key>`) is declared
//   in that kind's schema: the runtime expects nothing the schema does not say;
// * the kinds of the schema are the kinds the runtime registers (index.js), and
//   each kind's runtime module is the one the schema names (x-runtime);
// * spec.js's validator accepts every spec stored in the book's notebooks and
//   rejects broken ones with a message naming the key.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync, existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

import { SCHEMA, KIND_NAMES, checkSpec, errors } from "../src/spec.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const SRC = path.join(ROOT, "js/src");

// Which modules read a kind's spec object (the figure function and what it hands the spec to).
const READERS = {
  paths: ["paths.js", "run.js"],
  phase: ["phase.js", "paths.js", "run.js"],
  schedule: ["nqm.js"],
  runs: ["runs.js"],
  heatmap: ["heatmap.js"],
  scalar_map: ["scalar_map.js"],
};

function keysRead(file) {
  const text = readFileSync(path.join(SRC, file), "utf8").replace(/\/\/.*$/gm, "");
  return new Set([...text.matchAll(/\bspec\.(\w+)/g)].map((m) => m[1]));
}

test("every key a kind's runtime reads is declared in its schema", () => {
  for (const kind of KIND_NAMES) {
    const declared = new Set(Object.keys(SCHEMA.$defs[kind].properties));
    for (const file of READERS[kind]) {
      for (const key of keysRead(file)) {
        assert.ok(declared.has(key), `${file} reads spec.${key}, which the ${kind} schema does not declare`);
      }
    }
  }
});

test("every required key of a kind is read by its runtime (kind and params: by Python too)", () => {
  for (const kind of KIND_NAMES) {
    const read = new Set(READERS[kind].flatMap((f) => [...keysRead(f)]));
    for (const key of SCHEMA.$defs[kind].required) {
      if (key === "kind" || (key === "params" && ["runs", "heatmap"].includes(kind))) continue;
      assert.ok(read.has(key), `the ${kind} schema requires ${key}, which no module of ${READERS[kind]} reads`);
    }
  }
});

test("the schema's kinds are the runtime's, one module each", async () => {
  const { KINDS } = await import("../src/index.js");
  assert.deepEqual(Object.keys(KINDS).sort(), [...KIND_NAMES].sort());
  for (const kind of KIND_NAMES) {
    const def = SCHEMA.$defs[kind];
    assert.equal(def["x-runtime"], `js/src/${READERS[kind][0]}`);
    assert.ok(existsSync(path.join(ROOT, def["x-runtime"])), def["x-runtime"]);
    assert.ok(existsSync(path.join(ROOT, "code", def["x-python"])), def["x-python"]);
  }
});

function notebookSpecs() {
  const found = [];
  const book = path.join(ROOT, "book");
  for (const name of readdirSync(book).filter((f) => f.endsWith(".ipynb")).sort()) {
    const nb = JSON.parse(readFileSync(path.join(book, name), "utf8"));
    for (const cell of nb.cells) {
      for (const out of cell.outputs || []) {
        const html = [].concat((out.data || {})["text/html"] || []).join("");
        for (const m of html.matchAll(/<script type="application\/json" class="optbook-figure-spec">([\s\S]*?)<\/script>/g)) {
          found.push([name, JSON.parse(m[1])]);
        }
      }
    }
  }
  return found;
}

test("every spec stored in the notebooks passes the runtime's check", () => {
  const specs = notebookSpecs();
  assert.ok(specs.length >= 10, `only ${specs.length} specs found`);
  for (const [name, spec] of specs) assert.doesNotThrow(() => checkSpec(spec), name);
  assert.deepEqual(new Set(specs.map(([, s]) => s.kind)), new Set(KIND_NAMES));
});

test("broken specs are refused with the key named", () => {
  const [, paths] = notebookSpecs().find(([, s]) => s.kind === "paths");
  const { steps, ...noSteps } = paths;
  assert.throws(() => checkSpec(noSteps), /invalid paths spec at \(top level\): missing required key "steps"/);
  assert.throws(() => checkSpec({ ...paths, stepz: 3 }), /unexpected key "stepz"/);
  assert.throws(() => checkSpec({ ...paths, optimizers: [{ ...paths.optimizers[0], rule: "adamax" }] }),
                /\/optimizers\/0\/rule: "adamax" is not one of/);
  assert.throws(() => checkSpec({ ...paths, kind: "pie" }), /unknown kind "pie"/);
  assert.deepEqual(errors({ a: 1 }, { type: "object", required: ["b"] }), ['(top level): missing required key "b"']);
  const [, map] = notebookSpecs().find(([, s]) => s.kind === "scalar_map");
  assert.throws(() => checkSpec({ ...map, choices: [{ label: "x", coefficients: [1, 2] }] }),
                /invalid scalar_map spec at \/choices\/0\/coefficients: fewer than 3 items/);
  assert.throws(() => checkSpec({ ...map, domain: [0, 1] }), /\/domain\/0: 0 <= 0/);
});
