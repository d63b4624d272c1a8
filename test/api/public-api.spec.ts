import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildApiReport } from '../support/api-report.js';

/**
 * The package's public surface, compared with the checked-in report: a change to it must be made on
 * purpose. After an intended change, rewrite the report and review its diff:
 *   UPDATE_API_REPORT=1 npm test -- test/api
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const REPORT = fileURLToPath(new URL('./public-api.report.txt', import.meta.url));
const HOW_TO_UPDATE =
  'The public API (lib/index.ts, lib/testing/index.ts) differs from test/api/public-api.report.txt. ' +
  'If the change is intended, run `UPDATE_API_REPORT=1 npm test -- test/api`, review the diff of the report, ' +
  "say why in docs/architecture.md's Public API section when an export is added or removed, and commit both. " +
  'If it is not, restore the export or mark the member /** @internal */.';

describe('public API', () => {
  const report = buildApiReport(ROOT);

  it('the shipped declarations of both entry points type-check without skipLibCheck', () => {
    expect(report.declarationErrors).toEqual([]);
  });

  it('every export of both entry points has a doc comment', () => {
    expect(report.undocumented).toEqual([]);
  });

  it('the exports of both entry points match test/api/public-api.report.txt', () => {
    if (process.env.UPDATE_API_REPORT === '1') writeFileSync(REPORT, report.text);
    const expected = existsSync(REPORT) ? readFileSync(REPORT, 'utf8') : '';
    if (report.text !== expected) throw new Error(`${HOW_TO_UPDATE}\n\n${difference(expected, report.text)}`);
  });
});

/** Which exports came or went, and the first differing line with what it was, to point at the change. */
function difference(expected: string, actual: string): string {
  const before = expected.split('\n');
  const after = actual.split('\n');
  const added = exportNames(after).filter((name) => !exportNames(before).includes(name));
  const removed = exportNames(before).filter((name) => !exportNames(after).includes(name));
  const line = before.findIndex((text, index) => text !== after[index]);
  const at = line === -1 ? before.length : line;
  return [
    `Exports added: ${added.join(', ') || 'none'}; removed: ${removed.join(', ') || 'none'}.`,
    `First difference, at line ${at + 1} of the report:`,
    `  expected: ${before[at] ?? '(end of report)'}`,
    `  actual:   ${after[at] ?? '(end of report)'}`,
  ].join('\n');
}

function exportNames(lines: string[]): string[] {
  return lines.flatMap(
    (line) => /^(?:abstract class|class|interface|type|function|const|enum) (\w+)/.exec(line)?.[1] ?? [],
  );
}
