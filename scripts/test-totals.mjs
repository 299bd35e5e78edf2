// Prints the totals read from vitest's JSON report(s), as the last line:
// "N passed, N failed, N skipped". Given several reports (one per Node version run
// by scripts/test-all.sh), it prints one line per report, then their sum last.
// Skipped tests are never counted as passed.
import { readFileSync } from 'node:fs';

const files = process.argv.length > 2 ? process.argv.slice(2) : ['test-results/vitest.json'];

function totals(file) {
  let report;
  try {
    report = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    console.error(`no test report at ${file}: ${error.message}`);
    process.exit(1);
  }
  // A file that failed to load has no tests but is a failure all the same.
  const failedSuites = (report.testResults ?? []).filter(
    (r) => r.status === 'failed' && (r.assertionResults ?? []).length === 0,
  ).length;
  return {
    passed: report.numPassedTests ?? 0,
    failed: (report.numFailedTests ?? 0) + failedSuites,
    skipped: (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0),
  };
}

const line = (t) => `${t.passed} passed, ${t.failed} failed, ${t.skipped} skipped`;
const sum = { passed: 0, failed: 0, skipped: 0 };
const empty = [];
for (const file of files) {
  const t = totals(file);
  if (files.length > 1) console.log(`${file}: ${line(t)}`);
  if (t.passed === 0) empty.push(file);
  sum.passed += t.passed;
  sum.failed += t.failed;
  sum.skipped += t.skipped;
}
console.log(line(sum));
if (empty.length > 0) {
  console.error(`no test passed in ${empty.join(', ')}: treating the run as failed`);
  process.exit(1);
}
