/**
 * Page-by-page listings. GitHub's REST listings return at most 100 items a page; what is past
 * the first page is only seen by asking for the next one. Each page is its own request (its own
 * conditional cache entry and its own point of the rate-limit budget).
 */

/** GitHub's largest `per_page`. */
export const PAGE_SIZE = 100;

/** What was kept of one page, and how many items GitHub put on it (before any filtering). */
export interface KeptPage<V> {
  items: V[];
  count: number;
}

/**
 * Reads pages 1, 2, ... and concatenates what was kept, stopping at the first page shorter than
 * PAGE_SIZE (the last one), or after `maxPages` (a listing GitHub caps, so no page past it can
 * hold anything).
 */
export async function readAllPages<V>(readPage: (page: number) => Promise<KeptPage<V>>, maxPages = Number.POSITIVE_INFINITY): Promise<V[]> {
  if (!(maxPages >= 1)) throw new RangeError(`maxPages must be at least 1, got ${maxPages}`);
  const items: V[] = [];
  for (let page = 1; page <= maxPages; page++) {
    const kept = await readPage(page);
    items.push(...kept.items);
    if (kept.count < PAGE_SIZE) break;
  }
  return items;
}
