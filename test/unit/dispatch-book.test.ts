import { describe, expect, it } from "vitest";
import { DispatchBook } from "../../src/core/dispatch-book.js";

const keys = (started: Array<{ key: string }>) => started.map((s) => s.key);

describe("DispatchBook", () => {
  it("starts jobs oldest first, at most `concurrencyPerLane` per lane, lanes independently", () => {
    const book = new DispatchBook<string>({ maxJobs: 100, concurrencyPerLane: 2 });
    for (const k of ["a1", "a2", "a3"]) book.offer(k, "pat", k);
    for (const k of ["b1", "b2", "b3"]) book.offer(k, "installation:7", k);
    expect(keys(book.start())).toEqual(["a1", "a2", "b1", "b2"]);
    expect(book.start()).toEqual([]);
    expect(book.stateOf("a3")).toBe("waiting");
    expect(book.position("a3")).toBe(1);
    book.finish("b1");
    expect(keys(book.start())).toEqual(["b3"]);
    expect({ waiting: book.waiting, running: book.running }).toEqual({ waiting: 1, running: 4 });
  });

  it("holds a job once: a second delivery or reconciler pass is a duplicate", () => {
    const book = new DispatchBook<string>({ maxJobs: 10, concurrencyPerLane: 1 });
    expect(book.offer("r1", "pat", "first")).toBe("accepted");
    expect(book.offer("r1", "pat", "second")).toBe("duplicate");
    book.start();
    expect(book.offer("r1", "pat", "third")).toBe("duplicate");
    book.finish("r1");
    // Gone from the book once done: a later delivery is a new offer (provisioning is idempotent).
    expect(book.offer("r1", "pat", "fourth")).toBe("accepted");
  });

  it("is bounded: beyond maxJobs (waiting + running) offers are refused", () => {
    const book = new DispatchBook<string>({ maxJobs: 2, concurrencyPerLane: 1 });
    expect(book.offer("r1", "pat", "1")).toBe("accepted");
    book.start();
    expect(book.offer("r2", "pat", "2")).toBe("accepted");
    expect(book.offer("r3", "pat", "3")).toBe("full");
    book.finish("r1");
    expect(book.offer("r3", "pat", "3")).toBe("accepted");
  });

  it("cancels a waiting job but not a running one", () => {
    const book = new DispatchBook<string>({ maxJobs: 10, concurrencyPerLane: 1 });
    for (const k of ["r1", "r2", "r3"]) book.offer(k, "pat", k);
    book.start();
    expect(book.cancel("r1")).toBeUndefined();
    expect(book.cancel("r2")).toBe("r2");
    expect(book.position("r3")).toBe(1);
    book.finish("r1");
    expect(keys(book.start())).toEqual(["r3"]);
    expect(book.cancel("nope")).toBeUndefined();
  });

  it("cancels everything waiting at shutdown and keeps the running", () => {
    const book = new DispatchBook<string>({ maxJobs: 10, concurrencyPerLane: 1 });
    for (const k of ["r1", "r2", "r3"]) book.offer(k, "pat", k);
    book.offer("s1", "installation:1", "s1");
    book.start();
    expect(keys(book.cancelWaiting())).toEqual(["r2", "r3"]);
    expect({ waiting: book.waiting, running: book.running }).toEqual({ waiting: 0, running: 2 });
    book.finish("r1");
    book.finish("s1");
    expect(book.running).toBe(0);
  });
});
