const MASK = '***';

/**
 * The URL for messages and logs, its password replaced by `***`: the `user:password@` part and a
 * `password=` query parameter (ioredis reads both). Parsed as a URL where it is one, so that a `@` or
 * `:` in a password does not leave part of it; by pattern otherwise (`user:secret@host` with no scheme).
 */
export function maskUrlPassword(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.host) {
      const keys = [...new Set(parsed.searchParams.keys())].filter((key) => PASSWORD_PARAMETER.test(key));
      // Unchanged when there is nothing to mask: href would normalize it (`http://x` -> `http://x/`).
      if (!parsed.password && keys.length === 0) return url;
      if (parsed.password) parsed.password = MASK;
      for (const key of keys) parsed.searchParams.set(key, MASK);
      return parsed.href;
    }
  } catch {
    // Not a URL: masked by pattern below.
  }
  return url
    .replace(/^((?:[a-z][a-z0-9+.-]*:\/\/)?[^@/?#]*:)[^@/?#]*@/i, `$1${MASK}@`)
    .replace(/([?&]pass(?:word)?=)[^&#]*/gi, `$1${MASK}`);
}

const PASSWORD_PARAMETER = /^pass(word)?$/i;
