import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** A file the page loads, with its media type and a short hash of its content (the cache-busting version). */
export interface DashboardAsset {
  body: string;
  type: string;
  version: string;
}

/** The files under assets/ the dashboard serves, by the name the page asks for. */
const FILES: Readonly<Record<string, string>> = {
  'dashboard.js': 'text/javascript; charset=utf-8',
  'dashboard.css': 'text/css; charset=utf-8',
};

let loaded: { page: string; assets: Map<string, DashboardAsset> } | null = null;

/** Read from the package once, at the first request (scripts/copy-assets.mjs puts them next to this module in dist). */
function load(): NonNullable<typeof loaded> {
  const read = (file: string) => readFileSync(new URL(`assets/${file}`, import.meta.url), 'utf8');
  const assets = new Map(
    Object.entries(FILES).map(([file, type]) => {
      const body = read(file);
      return [file, { body, type, version: createHash('sha256').update(body).digest('hex').slice(0, 12) }];
    }),
  );
  let page = read('index.html');
  for (const [file, asset] of assets) page = page.replace(`{{${file}}}`, `assets/${file}?v=${asset.version}`);
  return { page, assets };
}

/** The served asset of that name, or undefined for any other name. */
export function dashboardAsset(file: string): DashboardAsset | undefined {
  loaded ??= load();
  return loaded.assets.get(file);
}

/**
 * The page. `base` is its `<base href>`, relative to the URL it was asked at (so that a proxy that
 * rewrites the path keeps working): the assets and the API resolve under the dashboard path.
 */
export function dashboardPage(requestPath: string, settings: { readOnly: boolean; hidePayloads: boolean }): string {
  loaded ??= load();
  const base = requestPath.endsWith('/') ? './' : `./${requestPath.slice(requestPath.lastIndexOf('/') + 1)}/`;
  return loaded.page
    .replace('{{base}}', escapeAttribute(base))
    .replace('{{readOnly}}', String(settings.readOnly))
    .replace('{{hidePayloads}}', String(settings.hidePayloads));
}

function escapeAttribute(value: string): string {
  return value.replace(/[&"<>']/g, (char) => `&#${char.charCodeAt(0)};`);
}
