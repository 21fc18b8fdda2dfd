import { describe, expect, it } from "vitest";
import { PAGE_SIZE, readAllPages } from "../../src/github/pages.js";

/** A listing of `total` numbered items, served PAGE_SIZE at a time; records the pages asked for. */
function listing(total: number) {
  const asked: number[] = [];
  const read = async (page: number) => {
    asked.push(page);
    const items = Array.from({ length: Math.max(0, Math.min(PAGE_SIZE, total - (page - 1) * PAGE_SIZE)) }, (_, i) => (page - 1) * PAGE_SIZE + i);
    return { items, count: items.length };
  };
  return { asked, read };
}

describe("readAllPages", () => {
  it("reads until a page is short, an empty one after exactly full pages included", async () => {
    const partial = listing(250);
    expect(await readAllPages(partial.read)).toHaveLength(250);
    expect(partial.asked).toEqual([1, 2, 3]);
    const exact = listing(200);
    expect(await readAllPages(exact.read)).toHaveLength(200);
    expect(exact.asked).toEqual([1, 2, 3]);
  });

  it("judges shortness on what the page held, not on what was kept of it", async () => {
    const asked: number[] = [];
    const kept = await readAllPages(async (page) => {
      asked.push(page);
      return { items: page === 1 ? [1] : [], count: page === 1 ? PAGE_SIZE : 3 };
    });
    expect(kept).toEqual([1]);
    expect(asked).toEqual([1, 2]);
  });

  it("stops at maxPages for a listing GitHub caps, and refuses a cap below one page", async () => {
    const endless = listing(Number.MAX_SAFE_INTEGER);
    expect(await readAllPages(endless.read, 10)).toHaveLength(10 * PAGE_SIZE);
    expect(endless.asked).toHaveLength(10);
    await expect(readAllPages(endless.read, 0)).rejects.toThrow(/maxPages must be at least 1/);
  });
});
