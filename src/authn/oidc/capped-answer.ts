// The body of an answer from a service the gateway calls at login (Graph, GitHub), read up to a cap: a huge
// or endless answer costs at most `maxBytes` and is refused, never buffered whole.
export const MAX_ANSWER_BYTES = 1024 * 1024;

/** The body as UTF-8; throws a TypeError (`answer too large`) past `maxBytes`, having cancelled the rest. */
export async function readCappedText(res: Response, maxBytes = MAX_ANSWER_BYTES): Promise<string> {
  const reader = res.body?.getReader();
  if (!reader) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw new TypeError('answer too large');
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}
