// Bundle the figure runtime into the one file every page of the book loads.
// `npm run build` (the Makefile runs it before every book build and test).
import { build } from "esbuild";

await build({
  entryPoints: [new URL("./src/index.js", import.meta.url).pathname],
  outfile: new URL("../book/_static/optbook-figures.js", import.meta.url).pathname,
  bundle: true,
  format: "iife",
  minify: true,
  target: ["es2019"],
  legalComments: "eof",
  logLevel: "warning",
});
