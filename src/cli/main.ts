// zt-gateway CLI: start | validate | explain | test | audit-config | hash-key | schema | admin | grants | csp | version. Exit codes: 0 ok, 1 invalid input or refused, 2 usage.
import { parseArgs } from 'node:util';
import { writeFileSync } from 'node:fs';
import { newApiKey } from '../authn/index.ts';
import { configJsonSchema } from '../config/index.ts';
import { Gateway, adoptPrimaryKeys, announceWorker, isWorker, parseWorkers, reportGeneration, workerId } from '../server/index.ts';
import { auditConfigCommand } from './audit-config.ts';
import { auditVerifyCommand } from './audit.ts';
import { startCluster, startFailure } from './cluster.ts';
import { explainCommand, policyTestCommand } from './policy.ts';
import { ADMIN_USAGE, adminCommand } from './admin.ts';
import { CSP_USAGE, cspCommand } from './csp.ts';
import { validateCommand, type Output } from './validate.ts';
import { versionCommand } from './version.ts';

const USAGE = `usage:
  zt-gateway start --config <file> [--workers N|auto]
                                       run the gateway (SIGHUP or a file change reloads the config);
                                       --workers: N processes (node:cluster), admin listener in the primary
  zt-gateway validate <file>           check a config file; exit 0 when valid
  zt-gateway explain --config <file> --route <name> [--identity id.json] --method GET --path /x
                     [--ip 10.0.0.1] [--time 2026-11-23T10:00:00Z] [--device id] [--json]
                     [--risk 0.7 | --signals new_ip,impossible_travel]
                                       print the policy decision and its reasons (exit 0 forwarded, 1 refused)
  zt-gateway test <policies.test.yaml> --config <file>
                                       run policy test cases; exit 1 on any mismatch
  zt-gateway audit-config --config <file> [--strict] [--json] [--metrics-url <admin /metrics URL>] (env ZT_ADMIN_TOKEN: the admin token for it)
                                       print the zero-trust posture report (--strict: exit 1 on any high finding)
  zt-gateway audit verify <file>       check a hash-chained audit file; exit 1 naming the first bad line
  zt-gateway hash-key                  print a new random API key and its SHA-256 for the keys file
  zt-gateway schema [--out <file>]     print the config JSON Schema
  zt-gateway version [--json]          print the version, git commit and Node version (also --version)
${ADMIN_USAGE}
${CSP_USAGE}`;

const stdio: Output = { out: (l) => process.stdout.write(`${l}\n`), err: (l) => process.stderr.write(`${l}\n`) };

type Command = (rest: string[], io: Output, name: string) => number | Promise<number>;

function validateCmd(rest: string[], io: Output): number | Promise<number> {
  const { positionals, values } = parseArgs({ args: rest, allowPositionals: true, options: { config: { type: 'string' } } });
  const file = positionals[0] ?? values.config;
  if (!file || positionals.length > 1 || (positionals.length === 1 && values.config !== undefined)) return usage(io);
  return validateCommand(file, io);
}

async function startCmd(rest: string[], io: Output): Promise<number> {
  const { values } = parseArgs({ args: rest, options: { config: { type: 'string', short: 'c' }, workers: { type: 'string' } } });
  if (!values.config) return usage(io);
  if (values.workers !== undefined && !isWorker()) {
    const workers = parseWorkers(values.workers);
    if (workers === undefined) {
      io.err(`--workers must be auto or a number from 1 to 256, not "${values.workers}"`);
      return usage(io);
    }
    return await startCluster(values.config, workers, io);
  }
  return await start(values.config, io);
}

function explainCmd(rest: string[], io: Output): number | Promise<number> {
  const { values } = parseArgs({
    args: rest,
    options: {
      config: { type: 'string' }, route: { type: 'string' }, identity: { type: 'string' },
      method: { type: 'string', default: 'GET' }, path: { type: 'string', default: '/' },
      ip: { type: 'string', default: '127.0.0.1' }, time: { type: 'string' }, device: { type: 'string' },
      json: { type: 'boolean', default: false }, risk: { type: 'string' }, signals: { type: 'string' },
    },
  });
  if (!values.config || !values.route) return usage(io);
  return explainCommand(
    { config: values.config, route: values.route, identity: values.identity, method: values.method, path: values.path,
      ip: values.ip, time: values.time, device: values.device, json: values.json, risk: values.risk, signals: values.signals },
    io,
  );
}

function testCmd(rest: string[], io: Output): number | Promise<number> {
  const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: { config: { type: 'string' } } });
  if (!values.config || positionals.length !== 1) return usage(io);
  return policyTestCommand(positionals[0] as string, values.config, io);
}

async function auditConfigCmd(rest: string[], io: Output): Promise<number> {
  const { values } = parseArgs({
    args: rest,
    options: {
      config: { type: 'string' }, strict: { type: 'boolean', default: false }, json: { type: 'boolean', default: false },
      'metrics-url': { type: 'string' },
    },
  });
  if (!values.config) return usage(io);
  return await auditConfigCommand({ config: values.config, strict: values.strict, json: values.json, metricsUrl: values['metrics-url'] }, io);
}

async function auditCmd(rest: string[], io: Output): Promise<number> {
  const { positionals } = parseArgs({ args: rest, allowPositionals: true, options: {} });
  if (positionals[0] !== 'verify' || positionals.length !== 2) return usage(io);
  return await auditVerifyCommand(positionals[1] as string, io);
}

function hashKeyCmd(_rest: string[], io: Output): number {
  const { key, hash } = newApiKey();
  io.out(`key:  ${key}`);
  io.out(`hash: ${hash}`);
  io.err('Give the key to its owner once; store only the hash in the keys file.');
  return 0;
}

async function adminCmd(rest: string[], io: Output, name: string): Promise<number> {
  const code = await adminCommand(name as 'admin' | 'grants', rest, io);
  return code < 0 ? usage(io) : code;
}

async function cspCmd(rest: string[], io: Output): Promise<number> {
  const code = await cspCommand(rest, io);
  return code < 0 ? usage(io) : code;
}

function schemaCmd(rest: string[]): number {
  const { values } = parseArgs({ args: rest, options: { out: { type: 'string' } } });
  const text = `${JSON.stringify(configJsonSchema(), null, 2)}\n`;
  if (values.out) writeFileSync(values.out, text);
  else process.stdout.write(text);
  return 0;
}

const COMMANDS: Readonly<Record<string, Command>> = Object.freeze({
  validate: validateCmd,
  start: startCmd,
  explain: explainCmd,
  test: testCmd,
  'audit-config': auditConfigCmd,
  audit: auditCmd,
  'hash-key': hashKeyCmd,
  admin: adminCmd,
  grants: adminCmd,
  schema: schemaCmd,
  csp: cspCmd,
  version: versionCommand,
  '--version': versionCommand,
});

const HELP = new Set(['help', '--help', '-h']);

export async function main(argv: string[], io: Output = stdio): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || HELP.has(command)) {
    io.out(USAGE);
    return command === undefined ? 2 : 0;
  }
  const run = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (run === undefined) {
    io.err(`unknown command "${command}"`);
    return usage(io);
  }
  try {
    return await run(rest, io, command);
  } catch (err) {
    // Unknown options, unexpected positionals, missing option values: all usage errors (exit 2).
    if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS_')) {
      io.err((err as Error).message);
      return usage(io);
    }
    throw err;
  }
}

function usage(io: Output): number {
  io.err(USAGE);
  return 2;
}

async function start(configFile: string, io: Output): Promise<number> {
  let gateway: Gateway | undefined;
  // Installed first: a SIGHUP during startup must not kill the process (the default action).
  const worker = isWorker();
  process.on('SIGHUP', () => {
    const running = gateway;
    void running?.reload().then((ok) => {
      if (ok && worker) reportGeneration(running.runtime.current.generation);
    });
  });
  if (worker) adoptPrimaryKeys();
  try {
    gateway = new Gateway({ configFile, ...(worker ? { admin: false, logBindings: { worker: workerId(), pid: process.pid } } : {}) });
    await gateway.start();
    if (worker) announceWorker(gateway.metrics.registry, gateway.runtime.current.generation);
  } catch (err) {
    return startFailure(err, io);
  }
  const running = gateway;
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      running.log.info({ signal }, 'shutting down');
      // Whatever a peer does (an upstream holding a handshake or a socket open), the process is gone within
      // drain_timeout + 1 s: stop() ends and destroys what it knows of before that; this is the backstop.
      const drainMs = running.runtime.current.compiled.config.shutdown.drain_timeout;
      setTimeout(() => process.exit(process.exitCode ?? 0), drainMs + 950).unref();
      running.stop().then(resolve, resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    // A worker whose primary is gone drains and exits rather than serve unsupervised.
    if (worker) process.once('disconnect', () => stop('disconnect'));
  });
  // The IPC channel would keep a drained worker alive: let go of it so the process can end.
  if (worker && process.connected) process.disconnect?.();
  // Stopped: everything the gateway holds is closed; a moment for the output to flush, then nothing a peer
  // still holds open keeps the process.
  setTimeout(() => process.exit(process.exitCode ?? 0), 100).unref();
  return 0;
}
