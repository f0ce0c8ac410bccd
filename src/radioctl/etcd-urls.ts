import { AutoradioError, ErrorCode } from '../common/errors.js';

/**
 * The first etcd endpoint that cannot be one: not `http[s]://host[:port]` nor `host[:port]`
 * (which the etcd client also takes). Such a value (a quoted URL followed by a `# comment` in
 * the config file, which systemd keeps as part of the value) would otherwise be reported as
 * "etcd is unreachable". Pure.
 */
export function invalidEtcdUrl(urls: readonly string[]): string | undefined {
  return urls.find((url) => {
    let parsed: URL;
    try {
      parsed = new URL(url.includes('://') ? url : `http://${url}`);
    } catch {
      return true;
    }
    const bare = parsed.pathname === '/' && parsed.search === '' && parsed.hash === '' && parsed.username === '';
    return !(parsed.protocol === 'http:' || parsed.protocol === 'https:') || !bare || parsed.hostname === '';
  });
}

export function assertEtcdUrls(urls: readonly string[]): void {
  if (urls.length === 0) throw new AutoradioError(ErrorCode.invalidConfig, 'no etcd URL is set');
  const bad = invalidEtcdUrl(urls);
  if (bad !== undefined) {
    throw new AutoradioError(ErrorCode.invalidConfig, `etcd URL ${JSON.stringify(bad)} is not http[s]://host:port`);
  }
}
