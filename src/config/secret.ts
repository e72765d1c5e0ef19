/**
 * A secret value (HEC token, SMTP password, a Teams URL with its `sig=`): it prints as `<redacted>` however
 * it is printed (template strings, JSON, `util.inspect`, error messages), and yields its value only to
 * `reveal()`, which only the code that puts it on the wire calls.
 */
import { inspect } from 'node:util';

export const REDACTED = '<redacted>';

export class Secret {
  readonly #value: string;
  /** Where it came from, safe to print: `${HEC_TOKEN}`. */
  readonly source: string;

  constructor(value: string, source: string) {
    this.#value = value;
    this.source = source;
  }

  /** The value, for the request that needs it. Never log what this returns. */
  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return REDACTED;
  }
}

/**
 * Removes every known secret value (and URL query strings, which carry signatures) from a text before it
 * is logged, reported or dead-lettered: errors from HTTP and SMTP libraries quote URLs and commands.
 */
export function redact(text: string, secrets: readonly Secret[]): string {
  let out = text;
  for (const secret of secrets) {
    for (const value of secretForms(secret.reveal())) {
      if (value.length >= 4) out = out.split(value).join(REDACTED);
    }
  }
  return out.replace(/([?&](?:sig|sv|se|sp|sr|code|token|key|password)=)[^&\s"']+/gi, `$1${REDACTED}`);
}

/**
 * A secret as it may appear in an error text: the value; for a URL, also its path and query (webhooks that
 * carry their token in the path, Slack- or Discord-style, and libraries that quote only the path), and
 * their percent-decoded forms. Longest first, so a part never leaves a piece of a longer form behind.
 */
function secretForms(value: string): string[] {
  const forms = new Set<string>([value]);
  try {
    const url = new URL(value);
    if (url.pathname.length >= 8) forms.add(url.pathname);
    if (url.search.length >= 4) forms.add(url.search.slice(1));
    if (url.pathname.length + url.search.length >= 8) forms.add(`${url.pathname}${url.search}`);
  } catch {
    // Not a URL: the value alone.
  }
  for (const form of [...forms]) {
    try {
      const decoded = decodeURIComponent(form);
      if (decoded !== form) forms.add(decoded);
    } catch {
      // Not percent-encoded.
    }
  }
  return [...forms].sort((a, b) => b.length - a.length);
}

/**
 * Masks credentials that SDK errors may quote from connection strings or SAS URLs (`SharedAccessKey=`,
 * `AccountKey=`, `SharedAccessSignature=`, `sig=`), for text we did not compose ourselves.
 */
export function redactCredentials(text: string): string {
  return text.replace(/\b(SharedAccessKey|AccountKey|SharedAccessSignature|sig)=([^;&\s"']+)/gi, `$1=${REDACTED}`);
}
