import { readFileSync } from 'node:fs';

/** The version of the package the daemons were installed from (package.json sits beside dist/). */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}
