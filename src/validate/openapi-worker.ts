// Runs in a worker thread: @apidevtools/swagger-parser is asynchronous, config compile is not. The parent
// blocks on `signal` (Atomics.wait) until this posts the validated, dereferenced document or the error.
import { workerData, type MessagePort } from 'node:worker_threads';

const { file, port, signal } = workerData as { file: string; port: MessagePort; signal: Int32Array };

try {
  // Imported here, so that even a failure to load the parser is answered (the parent is waiting).
  const { default: SwaggerParser } = await import('@apidevtools/swagger-parser');
  // validate() parses, checks the document against the OpenAPI 3.0/3.1 schema and spec rules, dereferences.
  const api = await SwaggerParser.validate(file, { resolve: { external: true, http: false } });
  port.postMessage({ ok: true, api });
} catch (err) {
  const e = err as { message?: string; details?: Array<{ instancePath?: string }> };
  port.postMessage({ ok: false, message: String(e.message ?? err), pointer: e.details?.[0]?.instancePath });
} finally {
  Atomics.store(signal, 0, 1);
  Atomics.notify(signal, 0);
}
