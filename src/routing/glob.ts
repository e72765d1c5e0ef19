/**
 * Case-insensitive globs for the routing rules: `*` matches any run of characters (also none), `?` exactly one
 * character; every other character, regex metacharacters and `[` included, is literal. No user regex anywhere:
 * a glob is compiled once (when the rules load) into a matcher that runs in linear time for `*`-only patterns
 * and in O(pattern x value) at worst otherwise, so no rule can make matching blow up.
 */

/** A compiled glob. */
export interface Glob {
  /** The pattern as written in the rules file. */
  readonly pattern: string;
  /** True when the pattern has no `*` or `?` (it compares for case-insensitive equality). */
  readonly literal: boolean;
  /** Tests a value (any case). */
  test(value: string): boolean;
  /** Tests a value that the caller already lower-cased with `toLowerCase()` (saves a copy per pattern). */
  testLower(lowerValue: string): boolean;
}

/** True when `pattern` contains a wildcard (`*` or `?`). */
export function hasWildcard(pattern: string): boolean {
  return pattern.includes('*') || pattern.includes('?');
}

/** Compiles a glob; the result is immutable and can be shared. */
export function compileGlob(pattern: string): Glob {
  const lower = pattern.toLowerCase();
  const testLower = hasWildcard(lower)
    ? lower.includes('?')
      ? (value: string): boolean => matchWildcards(lower, value)
      : compileStarOnly(lower.split('*'))
    : (value: string): boolean => value === lower;
  return Object.freeze({
    pattern,
    literal: !hasWildcard(pattern),
    test: (value: string): boolean => testLower(value.toLowerCase()),
    testLower,
  });
}

/**
 * `*`-only patterns: the first segment is a prefix, the last a suffix, the middle ones are found left to right
 * (leftmost placement is always the best one for `*`, so this is exact and linear).
 */
function compileStarOnly(segments: readonly string[]): (value: string) => boolean {
  const first = segments[0] ?? '';
  const last = segments[segments.length - 1] ?? '';
  const middle = segments.slice(1, -1).filter((segment) => segment.length > 0);
  const minLength = segments.reduce((total, segment) => total + segment.length, 0);
  if (middle.length === 0) {
    if (last.length === 0) return (value) => value.startsWith(first);
    if (first.length === 0) return (value) => value.endsWith(last);
    return (value) => value.length >= minLength && value.startsWith(first) && value.endsWith(last);
  }
  return (value) => {
    if (value.length < minLength || !value.startsWith(first) || !value.endsWith(last)) return false;
    const end = value.length - last.length;
    let position = first.length;
    for (const segment of middle) {
      const found = value.indexOf(segment, position);
      if (found < 0 || found + segment.length > end) return false;
      position = found + segment.length;
    }
    return true;
  };
}

/**
 * The classic greedy wildcard match with one backtrack point (the last `*`), which is exact for `*` and `?`.
 * `?` consumes one code point, so an emoji in a title counts as one character.
 */
function matchWildcards(pattern: string, value: string): boolean {
  let p = 0;
  let v = 0;
  let starP = -1;
  let starV = 0;
  while (v < value.length) {
    const token = pattern.charCodeAt(p); // NaN past the end
    if (token === QUESTION) {
      p += 1;
      v = nextCodePoint(value, v);
    } else if (token === STAR) {
      starP = p;
      p += 1;
      starV = v;
    } else if (token === value.charCodeAt(v)) {
      p += 1;
      v += 1;
    } else if (starP >= 0) {
      p = starP + 1;
      starV = nextCodePoint(value, starV);
      v = starV;
    } else {
      return false;
    }
  }
  while (pattern.charCodeAt(p) === STAR) p += 1;
  return p === pattern.length;
}

const STAR = 0x2a;
const QUESTION = 0x3f;

function nextCodePoint(value: string, index: number): number {
  const unit = value.charCodeAt(index);
  if (unit >= 0xd800 && unit <= 0xdbff) {
    const next = value.charCodeAt(index + 1);
    if (next >= 0xdc00 && next <= 0xdfff) return index + 2;
  }
  return index + 1;
}

/**
 * True when every value `inner` can match is also matched by `outer` (a conservative test: it may answer
 * false for some covering pairs, never true for a non-covering one). Used by `routes lint` to find shadowed
 * routes. `outer`'s `*` may absorb any part of `inner` (wildcards included); `outer`'s `?` absorbs one literal
 * character or one `?` of `inner`, never a `*`; literals must be equal (case-insensitively).
 */
export function globCovers(outer: string, inner: string): boolean {
  const o = Array.from(outer.toLowerCase());
  const i = Array.from(inner.toLowerCase());
  // reachable[j]: outer[0..k) can match inner[0..j) (dynamic programming over outer's tokens).
  let reachable: boolean[] = new Array<boolean>(i.length + 1).fill(false);
  reachable[0] = true;
  for (const token of o) {
    const next: boolean[] = new Array<boolean>(i.length + 1).fill(false);
    if (token === '*') {
      let any = false;
      for (let j = 0; j <= i.length; j += 1) {
        any = any || reachable[j] === true;
        next[j] = any;
      }
    } else {
      for (let j = 1; j <= i.length; j += 1) {
        if (reachable[j - 1] !== true) continue;
        const absorbed = i[j - 1];
        next[j] = token === '?' ? absorbed !== '*' : absorbed === token;
      }
    }
    reachable = next;
  }
  return reachable[i.length] === true;
}
