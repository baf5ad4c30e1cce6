// Loads an OpenAPI file at config load, synchronously: the parser runs in a worker thread and we wait for
// its answer (bounded). Problems come back with the file's line where the document lets us find one.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { MessageChannel, receiveMessageOnPort, Worker } from 'node:worker_threads';
import { isNode, LineCounter, parseDocument } from 'yaml';

export interface OpenApiDocument {
  readonly version: '3.0' | '3.1';
  readonly api: Record<string, unknown>;
  /** Line of a JSON pointer (`/paths/~1items/post`) in the file, or of its nearest existing parent. */
  readonly lineOf: (pointer: string) => number | undefined;
}

export class OpenApiError extends Error {
  readonly line: number | undefined;
  constructor(message: string, line: number | undefined) {
    super(message);
    this.line = line;
  }
}

const LOAD_TIMEOUT_MS = 20_000;
const workerUrl = new URL(`./openapi-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);

export function pointerSegments(pointer: string): string[] {
  if (pointer === '' || pointer === '#') return [];
  return pointer.replace(/^#/, '').split('/').slice(1).map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'));
}

function locator(text: string): (pointer: string) => number | undefined {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: false, strict: false });
  return (pointer) => {
    const path = pointerSegments(pointer).map((s) => (/^\d+$/.test(s) ? Number(s) : s));
    for (let depth = path.length; depth >= 0; depth--) {
      const node: unknown = depth === 0 ? doc.contents : doc.getIn(path.slice(0, depth), true);
      if (isNode(node) && node.range) return lineCounter.linePos(node.range[0]).line;
      // a numeric-looking map key (`"200":`) is a string key in YAML
      if (depth > 0 && typeof path[depth - 1] === 'number') {
        const alt = doc.getIn([...path.slice(0, depth - 1), String(path[depth - 1])], true);
        if (isNode(alt) && alt.range) return lineCounter.linePos(alt.range[0]).line;
      }
    }
    return undefined;
  };
}

/**
 * Parsed documents by file and content: a reload (or a second route on the same file) whose file did not
 * change skips the parser worker, which would hold up the event loop for hundreds of milliseconds.
 */
const parsed = new Map<string, OpenApiDocument>();
const PARSED_ENTRIES = 64;

/** Throws OpenApiError (with a line when known). */
export function loadOpenApi(file: string): OpenApiDocument {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new OpenApiError(`cannot read OpenAPI file (${(err as NodeJS.ErrnoException).code ?? 'error'})`, undefined);
  }
  const key = `${file}\0${createHash('sha256').update(text).digest('hex')}`;
  const known = parsed.get(key);
  // A copy: compiling closes the document's schemas in place.
  if (known !== undefined) return { ...known, api: structuredClone(known.api) };
  const doc = parseOpenApi(file, text);
  if (parsed.size >= PARSED_ENTRIES) parsed.delete(parsed.keys().next().value as string);
  parsed.set(key, { ...doc, api: structuredClone(doc.api) });
  return doc;
}

function parseOpenApi(file: string, text: string): OpenApiDocument {
  const lineOf = locator(text);
  const signal = new Int32Array(new SharedArrayBuffer(4));
  const { port1, port2 } = new MessageChannel();
  const worker = new Worker(workerUrl, { workerData: { file, port: port2, signal }, transferList: [port2], stdout: true, stderr: true });
  worker.unref();
  let message: { ok: boolean; api?: Record<string, unknown>; message?: string; pointer?: string } | undefined;
  try {
    Atomics.wait(signal, 0, 0, LOAD_TIMEOUT_MS);
    message = receiveMessageOnPort(port1)?.message as typeof message;
  } finally {
    port1.close();
    void worker.terminate();
  }
  if (message === undefined) throw new OpenApiError('the OpenAPI file could not be parsed in time', undefined);
  if (!message.ok || message.api === undefined) {
    const text = (message.message ?? 'invalid OpenAPI document').replace(/\s+/g, ' ').trim();
    // Schema errors carry a JSON pointer (swagger-parser's spec rules cover Swagger 2.0 only; compile
    // checks what validation depends on, such as duplicate parameters).
    return fail(text, message.pointer === undefined ? undefined : lineOf(message.pointer));
  }
  const version = String(message.api.openapi ?? '');
  if (!/^3\.[01]\./.test(version)) throw new OpenApiError(`only OpenAPI 3.0 and 3.1 are supported (got "${version}")`, lineOf('/openapi') ?? lineOf('/swagger'));
  return { version: version.startsWith('3.1') ? '3.1' : '3.0', api: message.api, lineOf };
}

function fail(message: string, line: number | undefined): never {
  throw new OpenApiError(message.replace(/^Swagger schema validation failed\. /, 'OpenAPI schema validation failed: '), line);
}
