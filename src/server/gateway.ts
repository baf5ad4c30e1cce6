// Wiring only: load → compile → runtime → listeners; reload swaps state; shutdown drains.
import { createHash } from 'node:crypto';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { createSecureContext, type Server as TlsServer } from 'node:tls';
import { createLogger, type Logger } from '../audit/index.ts';
import { compileConfig, type CompiledConfig, type CompileOptions, createRequestHandler, createUpgradeHandler } from '../pipeline/index.ts';
import { ConfigError, loadConfigFile, materialFiles, type LoadedConfig, type MaterialFile } from '../config/index.ts';
import { listenOn } from '../core/index.ts';
import { adminContextOptions, createAdminListener } from './admin.ts';
import { metricsGuard } from './metrics-auth.ts';
import { createAdminApi } from './admin-api.ts';
import { readAdminTls, wireAccessState } from './access-wiring.ts';
import { createMainListener, createRedirectListener, secureContextOptions } from './listeners.ts';
import type { H2Sessions } from './h2.ts';
import { Runtime } from './runtime.ts';
import { SniContexts, type SniTable } from './sni.ts';
import { certificateExpiries, MaterialWatch } from './material-watch.ts';
import { clientAuthChange, trackClientTrust, type ClientTrustTracker } from './client-trust.ts';
import { createRedis, createSessionEnds } from '../state/index.ts';
import { LiveTriggers } from './live-triggers.ts';
import { RpState, type RpServices } from '../authn/index.ts';
import { buildInfo, Metrics } from '../metrics/index.ts';
import type { ExtAuthzServer } from './ext-authz-grpc.ts';

export interface GatewayOptions {
  configFile: string;
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  /** Watch the config file and reload on change (default: config's reload.watch). */
  watch?: boolean;
  /** Serve the admin listener (default true; cluster workers leave it to the primary). */
  admin?: boolean;
  /** Fields on every log line, audit records included (a cluster worker's id and pid). */
  logBindings?: Record<string, unknown>;
  /** Clock for JWKS cooldowns and OIDC session/token expiry (default Date.now; tests advance their own). */
  now?: () => number;
}

export function loadAndCompile(file: string, env?: NodeJS.ProcessEnv, options?: CompileOptions): Promise<CompiledConfig> {
  return compileConfig(loadConfigFile(file, env), options);
}

/** An address a local client can use: the bound one, or loopback for a wildcard bind. */
function reachable(a: AddressInfo | null | undefined): string {
  if (!a || a.address === '0.0.0.0' || a.address === '::') return '127.0.0.1';
  return a.family === 'IPv6' ? `[${a.address}]` : a.address;
}

const materialOf = new WeakMap<CompiledConfig, readonly MaterialFile[]>();

/** The files a compiled config read besides itself (computed once per config). */
function filesOf(compiled: CompiledConfig): readonly MaterialFile[] {
  let files = materialOf.get(compiled);
  if (files === undefined) materialOf.set(compiled, (files = materialFiles(compiled.config, compiled.source.baseDir)));
  return files;
}

/** How long stop() waits for live connections ended with `shutdown` to close (their own timing: 400 + 200 ms). */
const LIVE_END_WAIT_MS = 700;

export class Gateway {
  readonly log: Logger;
  readonly #opts: GatewayOptions;
  #runtime: Runtime | undefined;
  #main: Server | undefined;
  /** HTTP/2 sessions of the main listener (listen.http2 / h2c). */
  #h2: H2Sessions | undefined;
  #admin: Server | undefined;
  #redirect: Server | undefined;
  /** The Envoy ext_authz gRPC listener (`ext_authz:`). */
  #extAuthz: ExtAuthzServer | undefined;
  #watcher: FSWatcher | undefined;
  /** Certificate, key and data files of the running config (material-watch.ts). */
  #material: MaterialWatch | undefined;
  #reloadTimer: NodeJS.Timeout | undefined;
  #stopping = false;
  readonly #upgraded = new Set<Duplex>();
  readonly #services: RpServices;
  #clientTrust: ClientTrustTracker | undefined;
  /** The certificates chosen by SNI (listen.tls.certificates), swapped on reload. */
  readonly #sni = new SniContexts();
  /** Ends live connections whose trust is gone (created with the runtime). */
  #triggers: LiveTriggers | undefined;
  readonly metrics: Metrics;
  /** The config read by the constructor, compiled by start(). */
  #source: LoadedConfig | undefined;
  /** The reload in progress (reloads run one after another, each against the config the last one left). */
  #reloading: Promise<boolean> = Promise.resolve(true);

  /** Reads the config (a file that does not load throws here); start() compiles and serves it. */
  constructor(opts: GatewayOptions) {
    this.#opts = opts;
    // The logger exists before the config (its level is applied once the config is read).
    this.log = opts.logger ?? createLogger('info');
    if (opts.logBindings) this.log.setBindings(opts.logBindings);
    // Connections and caches that outlive reloads (Redis is connected by start(), when the config names one).
    this.#services = { redis: null, state: new RpState(), now: opts.now ?? Date.now };
    this.#source = loadConfigFile(opts.configFile, opts.env);
    const usesRedis = this.#source.config.state?.sentinel ?? this.#source.config.state?.redis;
    this.metrics = new Metrics(usesRedis ? { redisUp: () => this.#services.redis?.status === 'ready' } : {});
  }

  /** Connections that outlive reloads (Redis: ioredis is imported only when the config names one), then the first compile. */
  async #init(source: LoadedConfig): Promise<Runtime> {
    const target = source.config.state?.sentinel ?? source.config.state?.redis;
    if (target) this.#services.redis = await createRedis(target, this.log);
    let compiled: CompiledConfig;
    try {
      compiled = await compileConfig(source, { onEvent: this.#onEvent, services: this.#services });
    } catch (err) {
      this.#services.redis?.disconnect();
      throw err;
    }
    if (!this.#opts.logger) this.log.level = compiled.config.log.level;
    for (const w of compiled.warnings) this.log.warn(w);
    const runtime = new Runtime(compiled, compiled.tls !== null, this.log, this.#services.redis, this.metrics);
    wireAccessState(runtime, this.log);
    // Logout and back-channel logout here end live connections on every instance (Redis pub/sub) or here.
    const ends = createSessionEnds(this.#services.redis, this.log);
    this.#services.onSessionEnd = (end) => ends.announce(end);
    // login.host fleet logout: sealed-cookie sessions of that login stop opening on every instance.
    ends.onEnd((end) => {
      if (end.login !== undefined) runtime.current.compiled.rp?.revokeLogin(end.login).catch(() => undefined);
    });
    this.#triggers = new LiveTriggers(runtime, ends, this.#services.now, this.log);
    return runtime;
  }

  readonly #onEvent = (event: string, detail: Record<string, unknown>): void => {
    if ((event === 'jwks_refreshed' || event === 'jwks_refresh_failed') && typeof detail.provider === 'string') {
      this.metrics.jwksFetch(detail.provider, event === 'jwks_refreshed');
    }
    if (event.endsWith('_failed') || event === 'session_claims_missing') this.log.warn({ event, ...detail }, event);
    else this.log.info({ event, ...detail }, event);
  };

  get runtime(): Runtime {
    if (!this.#runtime) throw new Error('gateway not started');
    return this.#runtime;
  }

  async start(): Promise<void> {
    const source = this.#source;
    if (source === undefined) throw new Error('gateway already started');
    this.#source = undefined;
    const runtime = (this.#runtime = await this.#init(source));
    const compiled = runtime.current.compiled;
    if (compiled.tls) this.#sni.install(SniContexts.build(compiled.tls));
    const listener = createMainListener(
      compiled,
      { request: createRequestHandler(runtime, this.log), upgrade: createUpgradeHandler(runtime, this.log, this.#upgraded) },
      this.log,
      this.#sni,
    );
    const main = (this.#main = listener.server);
    this.#h2 = listener.h2;
    // Client CA presence cannot change on reload (refused there), so tracking is decided once here.
    if (compiled.tls?.clientTrust !== undefined) {
      this.#clientTrust = trackClientTrust(main, () => this.runtime.current.compiled.tls?.clientTrust, listener.h2);
    }
    await listenOn(main, compiled.config.listen.address);
    await runtime.access.ready; // bounded: protected routes fail closed until the state is loaded
    if (compiled.config.admin && this.#opts.admin !== false) {
      const adminTls = readAdminTls(compiled);
      this.#admin = createAdminListener(
        {
          ready: () => !this.#stopping && this.#runtime !== undefined,
          generation: () => this.runtime.current.generation,
          metrics: () => this.metrics.scrape(),
          metricsAllowed: metricsGuard(() => this.runtime.current.compiled.config.admin, adminTls?.ca !== undefined),
        },
        createAdminApi({ runtime, log: this.log, mtls: adminTls?.ca !== undefined }),
        adminTls,
      );
      await listenOn(this.#admin, compiled.config.admin.listen);
    }
    if (compiled.config.listen.redirect_http) {
      this.#redirect = createRedirectListener(() => this.port);
      await listenOn(this.#redirect, compiled.config.listen.redirect_http);
    }
    if (compiled.extAuthz) {
      // grpc-js and the protos load only for a config that has ext_authz.
      const { startExtAuthz } = await import('./ext-authz-grpc.ts');
      this.#extAuthz = await startExtAuthz(runtime, this.log, compiled.extAuthz);
      this.log.info({ listen: compiled.extAuthz.listen, port: this.#extAuthz.port, tls: compiled.extAuthz.tls !== null }, 'ext_authz gRPC listening');
    }
    const watchFile = this.#opts.watch ?? compiled.config.reload.watch;
    await this.#readExpiries(compiled);
    if (watchFile) {
      this.#watch();
      this.#material = new MaterialWatch(
        () => filesOf(this.runtime.current.compiled),
        (changed) => {
          this.log.info({ files: changed.map((f) => f.key) }, 'a certificate, key or data file changed: reloading');
          void this.reload();
        },
      );
      await this.#material.start();
    }
    this.log.info(
      { listen: this.url, admin: this.adminUrl, routes: compiled.routes.length, generation: runtime.current.generation, ...buildInfo() },
      'zt-gateway started',
    );
  }

  get port(): number {
    return (this.#main?.address() as AddressInfo | null)?.port ?? 0;
  }

  get url(): string {
    const secure = this.runtime.current.compiled.tls !== null;
    return `${secure ? 'https' : 'http'}://${reachable(this.#main?.address() as AddressInfo | null)}:${this.port}`;
  }

  get adminUrl(): string | undefined {
    const a = this.#admin?.address() as AddressInfo | null | undefined;
    const scheme = this.runtime.current.compiled.config.admin?.tls ? 'https' : 'http';
    return a ? `${scheme}://${reachable(a)}:${a.port}` : undefined;
  }

  /** The port of the ext_authz gRPC listener, when the config has one. */
  get extAuthzPort(): number | undefined {
    return this.#extAuthz?.port;
  }

  get redirectPort(): number | undefined {
    return (this.#redirect?.address() as AddressInfo | null | undefined)?.port;
  }

  /**
   * Builds and validates the whole new config, then swaps it in (one reference); on any error, logs it and
   * keeps serving the old one. Reloads are queued: each compiles against the config the previous one left.
   */
  reload(): Promise<boolean> {
    const next = this.#reloading.then(async () => {
      if (this.#stopping || this.#runtime === undefined) return false;
      const ok = await this.#reload();
      this.metrics.configReload(ok);
      return ok;
    });
    this.#reloading = next;
    return next;
  }

  async #reload(): Promise<boolean> {
    let compiled: CompiledConfig;
    try {
      compiled = await loadAndCompile(this.#opts.configFile, this.#opts.env, {
        services: this.#services,
        previous: this.runtime.current.compiled,
        onEvent: this.#onEvent,
      });
    } catch (err) {
      const problems = err instanceof ConfigError ? err.message.split('\n') : [String(err)];
      this.log.error({ problems }, 'config reload failed; keeping the running config');
      return false;
    }
    if (this.#stopping) return false; // stopped while compiling: nothing to swap into
    const before = this.runtime.current.compiled.config;
    if (compiled.config.listen.address !== before.listen.address || (compiled.tls === null) !== (before.listen.tls === undefined)) {
      this.log.warn('listen address or TLS on/off changed: restart the gateway to apply that part');
    }
    const clientAuthProblem = clientAuthChange(this.runtime.current.compiled.tls, compiled.tls);
    if (clientAuthProblem !== undefined) {
      this.log.error({ problems: [clientAuthProblem] }, 'config reload refused (restart the gateway to apply it); keeping the running config');
      return false;
    }
    const trustChanged = compiled.tls?.clientTrust !== this.runtime.current.compiled.tls?.clientTrust;
    // Build every new context first: a bad key or a key that does not match the certificate must fail the
    // reload (keeping the running certificates), not throw out of a file-watcher or SIGHUP callback.
    let mainTls: { options: ReturnType<typeof secureContextOptions>; sni: SniTable } | undefined;
    let adminTls: ReturnType<typeof adminContextOptions> | undefined;
    try {
      if (compiled.tls && this.#main && 'setSecureContext' in this.#main) {
        mainTls = { options: secureContextOptions(compiled.tls), sni: SniContexts.build(compiled.tls) };
        createSecureContext(mainTls.options);
      }
      if (this.#admin && 'setSecureContext' in this.#admin) {
        const admin = readAdminTls(compiled);
        if (admin) createSecureContext((adminTls = adminContextOptions(admin)));
      }
    } catch (err) {
      this.log.error({ problems: [`TLS: ${(err as Error).message}`] }, 'config reload failed; keeping the running config');
      return false;
    }
    if (mainTls) {
      (this.#main as unknown as TlsServer).setSecureContext(mainTls.options);
      this.#sni.install(mainTls.sni);
    }
    if (adminTls) (this.#admin as unknown as TlsServer).setSecureContext(adminTls);
    const state = this.runtime.swap(compiled);
    // ext_authz calls decide against the swapped-in state; its listener takes new TLS material now.
    const extAuthzProblem = this.#extAuthz ? this.#extAuthz.reloaded(compiled.extAuthz) : compiled.extAuthz ? 'ext_authz added: restart the gateway to start its listener' : undefined;
    if (extAuthzProblem !== undefined) this.log.warn(extAuthzProblem);
    this.#services.state.commit(compiled.rp); // OIDC parts the new config no longer uses are released
    const ended = this.#triggers?.recheck() ?? 0; // live connections the new policy denies end now
    if (ended > 0) this.log.info({ generation: state.generation, ended }, 'live connections the reloaded config denies were closed');
    if (trustChanged) {
      // Keep-alive connections were verified against the old CA/CRL: idle ones close now, busy ones after
      // their current answer (client-trust.ts), and their certificates no longer count (mtls.ts).
      this.#clientTrust?.trustChanged();
      this.log.info({ generation: state.generation }, 'client CA or CRL changed: connections verified against the old one are closed');
    }
    await this.#readExpiries(compiled);
    this.log.info({ generation: state.generation, routes: compiled.routes.length }, 'config reloaded');
    return true;
  }

  /**
   * Watches the config's directory, not the file: editors replace the file by rename and Kubernetes swaps a
   * `..data` symlink, both of which a file watch misses. Reloads only when the content really changed.
   */
  #watch(): void {
    const dir = dirname(resolve(this.#opts.configFile));
    const name = basename(this.#opts.configFile);
    let last = this.#contentHash();
    try {
      this.#watcher = watch(dir, { persistent: false }, (_event, file) => {
        if (file !== null && file !== name && !String(file).startsWith('..')) return;
        clearTimeout(this.#reloadTimer);
        this.#reloadTimer = setTimeout(() => {
          const now = this.#contentHash();
          if (now === undefined || now === last) return;
          last = now;
          void this.reload();
        }, 150);
        this.#reloadTimer.unref();
      });
      this.#watcher.on('error', (err) => this.log.warn({ err: err.message }, 'config watch failed; reload with SIGHUP'));
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'cannot watch the config directory; reload with SIGHUP');
    }
  }

  /** zt_certificate_expiry_seconds follows the certificate files of the running config. */
  async #readExpiries(compiled: CompiledConfig): Promise<void> {
    this.metrics.certificateExpiries(await certificateExpiries(filesOf(compiled)));
  }

  #contentHash(): string | undefined {
    try {
      return createHash('sha256').update(readFileSync(this.#opts.configFile)).digest('base64url');
    } catch {
      return undefined; // mid-replace: the next event will see the new file
    }
  }


  /**
   * Ends every live connection with `shutdown` (a WebSocket gets its 1001 close frame at the next frame
   * boundary, a streaming response is aborted: both recorded as such) and waits, bounded, for them to go;
   * what remains is destroyed by the caller. The whole stop stays within drain_timeout + 1 s.
   */
  async #endLive(): Promise<void> {
    const live = this.runtime.live;
    if (live.endAll('shutdown') === 0) return;
    const deadline = Date.now() + LIVE_END_WAIT_MS;
    while (live.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  }

  /** Stops accepting, lets in-flight requests finish up to drain_timeout, then closes everything. */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    clearTimeout(this.#reloadTimer);
    this.#watcher?.close();
    this.#material?.stop();
    if (this.#runtime === undefined) {
      this.#services.state.dispose(); // never started (or its first compile failed): nothing listens
      return;
    }
    const drainMs = this.runtime.current.compiled.config.shutdown.drain_timeout;
    const main = this.#main;
    const closed = main ? new Promise<void>((r) => main.close(() => r())) : Promise.resolve();
    const h2 = this.#h2;
    h2?.closeAll(); // GOAWAY: open streams finish, no new ones
    main?.closeIdleConnections();
    const idleSweep = setInterval(() => main?.closeIdleConnections(), 100);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), drainMs)));
    const result = await Promise.race([closed.then(() => 'drained' as const), timedOut]);
    clearInterval(idleSweep);
    clearTimeout(timer);
    if (result === 'timeout') {
      this.log.warn({ drain_timeout_ms: drainMs }, 'drain timeout: closing remaining connections');
      await this.#endLive();
      if (typeof main?.closeAllConnections === 'function') main.closeAllConnections();
      h2?.destroyAll();
      for (const s of this.#upgraded) s.destroy();
    }
    await Promise.all([
      ...[this.#admin, this.#redirect].map((s) => (s ? new Promise<void>((r) => s.close(() => r())) : undefined)),
      this.#extAuthz?.close(),
    ]);
    this.#admin?.closeAllConnections();
    this.#triggers?.close();
    await this.runtime.close();
    this.#services.state.dispose();
    this.log.info({ drain: result }, 'zt-gateway stopped');
    this.log.flush();
  }
}
