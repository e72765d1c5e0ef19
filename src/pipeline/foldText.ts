/**
 * The case fold of decode, done on a record's JSON text: the first letter of every key lower-cased
 * (`SystemAlertId` -> `systemAlertId`). JSON.parse of the folded text gives the case-folded view directly, so
 * a PascalCase record (an Event Hub alert) is parsed once and never copied key by key.
 *
 * Only the first character of some keys changes, so the folded text has the same length and structure as the
 * original, and parses exactly when the original does.
 *
 * The scan gives up (answers undefined) whenever the text might fold differently from the walk over the
 * parsed record in decode.ts. That walk then decides, and reports, exactly. It gives up on:
 * - a key with an escape sequence (`"\u0041lertType"` is `AlertType` once parsed);
 * - a `$type` or `$values` key (the walk drops or unwraps those);
 * - a hostile key (`__proto__`, `constructor`, `prototype`: the walk quarantines them, naming the path);
 * - nesting within two levels of the limit (the walk names the path);
 * - an object in which two keys fold to the same name (`Severity` and `severity`: the walk keeps the first
 *   that carries a value, JSON.parse the last);
 * - a string that does not end, or more keys open at once than it keeps track of.
 */

/** Per nesting level: bit 1 an object (not an array), bit 2 a key starting A-Z seen, bit 4 one starting a-z. */
const OBJECT = 1;
const UPPER = 2;
const LOWER = 4;
/** Deepest level the scan follows (the walk takes deeper records). */
const MAX_LEVELS = 126;
const levels = new Uint8Array(MAX_LEVELS + 2);
/** Per object level: where its keys start in `keys`. */
const keysFrom = new Int32Array(MAX_LEVELS + 2);
/** The keys of the objects open at the moment, as (start, length) pairs into the text. */
const keys = new Int32Array(8192);

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * `text` with the first letter of every key lower-cased (`text` itself when no key starts with A-Z), or
 * undefined when the walk over the parsed record must fold it instead (see above). `text` is expected to be
 * one JSON object; what is not JSON may still get an answer, which JSON.parse then refuses.
 */
export function foldJsonText(text: string, maxDepth: number): string | undefined {
  const deepest = Math.min(maxDepth - 2, MAX_LEVELS);
  let depth = 0;
  let expectKey = false;
  let keysTop = 0;
  /** Positions of key letters to lower-case, in text order. */
  let fold: number[] | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const end = stringEnd(text, i);
      if (end === -1) return undefined;
      if (expectKey) {
        expectKey = false;
        const start = i + 1;
        const length = end - start;
        for (let k = start; k < end; k++) if (text.charCodeAt(k) === BACKSLASH) return undefined;
        const first = text.charCodeAt(start);
        if (first >= 65 && first <= 90) {
          (fold ??= []).push(start);
          levels[depth] = (levels[depth] as number) | UPPER;
        } else if (first >= 97 && first <= 122) {
          levels[depth] = (levels[depth] as number) | LOWER;
        } else if (first === 0x24 /* $ */ && (length === 5 || length === 7)) {
          const key = text.slice(start, end);
          if (key === '$type' || key === '$values') return undefined;
        }
        if (length === 9 || length === 11) {
          const key = text.slice(start, end);
          if (key === '__proto__' || key === 'constructor' || key === 'prototype') return undefined;
        }
        if (keysTop + 2 > keys.length) return undefined;
        keys[keysTop++] = start;
        keys[keysTop++] = length;
      }
      i = end;
    } else if (c === 0x7b /* { */) {
      if (++depth > deepest) return undefined;
      levels[depth] = OBJECT;
      keysFrom[depth] = keysTop;
      expectKey = true;
    } else if (c === 0x5b /* [ */) {
      if (++depth > deepest) return undefined;
      levels[depth] = 0;
    } else if (c === 0x7d /* } */) {
      if (depth === 0) return undefined;
      const from = keysFrom[depth] as number;
      if (((levels[depth] as number) & (UPPER | LOWER)) === (UPPER | LOWER) && keysCollide(text, from, keysTop)) return undefined;
      keysTop = from;
      depth--;
    } else if (c === 0x5d /* ] */) {
      if (depth === 0) return undefined;
      depth--;
    } else if (c === 0x2c /* , */) {
      expectKey = ((levels[depth] as number) & OBJECT) === OBJECT;
    }
  }
  if (fold === undefined) return text;
  let out = '';
  let last = 0;
  for (let f = 0; f < fold.length; f++) {
    const at = fold[f] as number;
    out += text.slice(last, at) + String.fromCharCode(text.charCodeAt(at) + 32);
    last = at + 1;
  }
  return out + text.slice(last);
}

/** Where the string opening at `open` ends (its closing quote), or -1 when it does not. */
function stringEnd(text: string, open: number): number {
  let end = text.indexOf('"', open + 1);
  while (end !== -1 && text.charCodeAt(end - 1) === BACKSLASH) {
    // The quote is escaped when an odd number of backslashes stands before it.
    let backslashes = 1;
    while (text.charCodeAt(end - 1 - backslashes) === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) break;
    end = text.indexOf('"', end + 1);
  }
  return end;
}

/**
 * True when, among one object's keys (`keys[from..to)`), a key starting A-Z and one starting a-z fold to the
 * same name (`Severity`, `severity`).
 */
function keysCollide(text: string, from: number, to: number): boolean {
  for (let u = from; u < to; u += 2) {
    const upperAt = keys[u] as number;
    const first = text.charCodeAt(upperAt);
    if (!(first >= 65 && first <= 90)) continue;
    const length = keys[u + 1] as number;
    for (let l = from; l < to; l += 2) {
      if (keys[l + 1] !== length) continue;
      const lowerAt = keys[l] as number;
      if (text.charCodeAt(lowerAt) !== first + 32) continue;
      let k = 1;
      while (k < length && text.charCodeAt(upperAt + k) === text.charCodeAt(lowerAt + k)) k++;
      if (k === length) return true;
    }
  }
  return false;
}
