/**
 * Times as Defender and the Functions host write them: ISO 8601, sometimes without a zone. A zoneless time
 * here is UTC (the fields are named `...Utc`), never the machine's local time as `Date` would assume.
 */

const ZONELESS = /T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/;

/** Parses an ISO 8601 time, reading a zoneless one as UTC; undefined when it is not a time. */
export function parseUtc(text: string | undefined): Date | undefined {
  if (text === undefined) return undefined;
  const trimmed = text.trim();
  if (trimmed === '') return undefined;
  const date = new Date(ZONELESS.test(trimmed) ? `${trimmed}Z` : trimmed);
  return Number.isNaN(date.getTime()) ? undefined : date;
}
