import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * docs/testing.md shows the files of test/testing/examples verbatim (each block preceded by
 * `<!-- from: test/testing/examples/<file> -->`). Jest runs those files as tests and `npm run lint`
 * type-checks them (tsconfig.json includes test/), so the page's examples compile and pass.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const EXAMPLES = 'test/testing/examples';
const markdown = readFileSync(join(ROOT, 'docs', 'testing.md'), 'utf8');

/** The code of every block the page marks as taken from a file, by that file. */
function embeddedFiles(): Map<string, string> {
  const embedded = new Map<string, string>();
  for (const match of markdown.matchAll(/<!-- from: (\S+) -->\n+```ts\n([\s\S]*?)\n```/g)) {
    embedded.set(match[1]!, match[2]!);
  }
  return embedded;
}

describe('docs/testing.md', () => {
  const files = readdirSync(join(ROOT, EXAMPLES)).map((name) => `${EXAMPLES}/${name}`);

  it('shows every example file verbatim, and only those', () => {
    const embedded = embeddedFiles();
    expect([...embedded.keys()].sort()).toEqual([...files].sort());
    for (const file of files) {
      expect({ file, code: embedded.get(file) }).toEqual({
        file,
        code: readFileSync(join(ROOT, file), 'utf8').trimEnd(),
      });
    }
  });
});
