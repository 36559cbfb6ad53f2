/**
 * Several listings, each in key order (as the BlobDriver contract says), merged into one in key order,
 * the duplicates dropped where they meet: memory holds one key per listing, whatever the number of keys.
 * A listing out of order is an error; a consumer that stops early (or a failure) closes the listings
 * still open.
 */

export interface Listing {
  /** For errors. */
  name: string;
  keys: AsyncIterable<string>;
  /** The error to throw when the listing fails with `err`. */
  failed: (err: unknown) => Error;
}

export async function* mergedListing(listings: readonly Listing[]): AsyncIterable<string> {
  const sources = listings.map((l) => ({ l, it: l.keys[Symbol.asyncIterator](), head: undefined as string | undefined }));
  const advance = async (src: (typeof sources)[number]) => {
    let next: IteratorResult<string>;
    try {
      next = await src.it.next();
    } catch (err) {
      throw src.l.failed(err);
    }
    if (next.done) {
      src.head = undefined;
      return;
    }
    if (src.head !== undefined && !(next.value > src.head)) throw new Error(`${src.l.name} listed ${next.value} after ${src.head}: not in key order`);
    src.head = next.value;
  };
  let live = sources;
  try {
    await Promise.all(sources.map(advance));
    live = sources.filter((s) => s.head !== undefined);
    while (live.length) {
      let least = live[0]!.head!;
      for (const s of live) if (s.head! < least) least = s.head!;
      yield least;
      await Promise.all(live.filter((s) => s.head === least).map(advance));
      live = live.filter((s) => s.head !== undefined);
    }
  } finally {
    await Promise.all(live.map((s) => s.it.return?.().catch(() => undefined)));
  }
}
