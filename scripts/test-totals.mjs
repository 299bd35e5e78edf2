// Prints the totals read from vitest's JSON report(s), as the last line:
// "N passed, N failed, N skipped". Given several reports (one per Node version run
// by scripts/test-all.sh), it prints one line per report, then their sum last.
// Skipped tests are never counted as passed. Above the totals it names every failed
// test (file, name, time taken, first line of the error): CI keeps only the tail of
// the output, and a flake nobody can name cannot be fixed.
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

const files = process.argv.length > 2 ? process.argv.slice(2) : ['test-results/vitest.json'];

function totals(file) {
  let report;
  try {
    report = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    console.error(`no test report at ${file}: ${error.message}`);
    process.exit(1);
  }
  let failedSuites = 0;
  for (const suite of report.testResults ?? []) {
    const where = relative(process.cwd(), suite.name ?? '?');
    // A file that failed to load has no tests but is a failure all the same.
    if (suite.status === 'failed' && (suite.assertionResults ?? []).length === 0) {
      failedSuites++;
      failures.push(`${file}: ${where}: the file failed to load: ${firstLine(suite.message)}`);
    }
    for (const test of suite.assertionResults ?? []) {
      if (test.status !== 'failed') continue;
      const took = test.duration == null ? '' : ` (${Math.round(test.duration)} ms)`;
      failures.push(`${file}: ${where} > ${test.fullName ?? test.title}${took}: ${firstLine(test.failureMessages?.[0])}`);
    }
  }
  return {
    passed: report.numPassedTests ?? 0,
    failed: (report.numFailedTests ?? 0) + failedSuites,
    skipped: (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0),
  };
}

function firstLine(text) {
  const lines = String(text ?? '')
    .split('\n')
    .filter((l) => l.trim() !== '');
  let line = lines[0] ?? '(no message)';
  // A test that timed out reports only the stack vitest took where the test was defined
  // (its message is lost in the JSON report): say so, and where.
  if (line.includes('STACK_TRACE_ERROR')) {
    const frame = lines.find((l) => /\.test\.[cm]?[jt]s/.test(l))?.trim();
    line = `timed out (no error of its own)${frame ? `, defined ${frame}` : ''}`;
  }
  return line.length > 300 ? `${line.slice(0, 300)}...` : line;
}

const failures = [];
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
if (failures.length > 0) {
  console.log(`failed tests (${failures.length}):`);
  for (const failure of failures) console.log(`  ${failure}`);
}
console.log(line(sum));
if (empty.length > 0) {
  console.error(`no test passed in ${empty.join(', ')}: treating the run as failed`);
  process.exit(1);
}
