// Config errors: one class, ConfigError { code, path, message }, for a compile step's refusal of one value
// and for every problem of a config file at once (load and compile gather them, then throw). The codes are
// a closed set, documented in docs/errors.md: test and alert on them, never on the message text.

/** Why a config value was refused. Stable: add a code only for a new kind of problem, never rename one. */
export const CONFIG_ERROR_CODES = {
  /** The YAML cannot be parsed. */
  CFG_SYNTAX: 'the file is not valid YAML',
  /** A key the config contract does not know (typo, or a key at the wrong level). */
  CFG_UNKNOWN_KEY: 'a key the config contract does not define',
  /** A required key is absent. */
  CFG_MISSING_KEY: 'a required key is missing',
  /** A value of the wrong type, form or range. */
  CFG_BAD_VALUE: 'a value of the wrong type, form or range',
  /** A `${env:…}` or `${file:…}` reference that cannot be resolved. */
  CFG_BAD_REFERENCE: 'an ${env:…}/${file:…} reference that cannot be resolved',
  /** A file the config names (certificate, key, keys file, inventory, GeoIP or OpenAPI file) cannot be read or used. */
  CFG_BAD_FILE: 'a file the config names cannot be read or is not usable',
  /** Two settings that cannot be combined, or one that needs another. */
  CFG_CONFLICT: 'settings that cannot be combined, or one that needs another',
  /** A name that is not defined (an identity provider). */
  CFG_UNKNOWN_NAME: 'a reference to a name that is not defined',
  /** A name or header used twice (route names, identity header names, YAML keys). */
  CFG_DUPLICATE: 'a name used twice',
} as const;

export type ConfigErrorCode = keyof typeof CONFIG_ERROR_CODES;

/** The code of a ConfigError that gathers every problem of one file; each problem has its own code. */
export const CONFIG_INVALID = 'GW_ERR_CONFIG_INVALID';

/** A key path: ['routes', 3, 'authorize', 'allow', 0]. */
export type KeyPath = readonly (string | number)[];

/** One problem in a config file, located as precisely as the YAML allows. */
export interface ConfigProblem {
  file: string;
  path: string; // key path such as routes[2].upstream.url ('' for the document)
  message: string;
  code: ConfigErrorCode;
  /** `path` as an array ([] for the document, or for a problem in another file). */
  keyPath: KeyPath;
  line?: number;
  col?: number;
}

export function formatProblem(p: ConfigProblem): string {
  const where = p.line === undefined ? '' : ` at line ${p.line}:${p.col ?? 1}`;
  return `${p.file}: ${p.path ? `${p.path}: ` : ''}${p.message}${where}`;
}

export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out ? `.${String(key)}` : String(key);
  }
  return out;
}

/** Where a problem sits outside the config file (an OpenAPI document the config names). */
export interface ExternalLocation {
  readonly file: string;
  readonly line?: number | undefined;
}

/**
 * A config value that cannot be used. A compile step throws it with `path` relative to the part it compiles
 * (`['allow', 0, 'source_ip']` for a policy); the config compiler moves it under the part's key (`within`).
 * Load and compile throw one with code GW_ERR_CONFIG_INVALID and every located problem in `problems`.
 */
export class ConfigError extends Error {
  readonly code: ConfigErrorCode | typeof CONFIG_INVALID;
  readonly path: KeyPath;
  readonly problems: readonly ConfigProblem[];
  /** Set when the problem is in another file the config names: reported there, not at `path`. */
  readonly external: ExternalLocation | undefined;

  constructor(
    code: ConfigErrorCode | typeof CONFIG_INVALID,
    path: KeyPath,
    message: string,
    more: { external?: ExternalLocation | undefined; problems?: readonly ConfigProblem[] } = {},
  ) {
    super(message);
    this.name = 'ConfigError';
    this.code = code;
    this.path = Object.freeze([...path]);
    this.problems = Object.freeze([...(more.problems ?? [])]);
    this.external = more.external;
  }

  /** Every problem of one config file (already located), in one error: `path` is the first problem's. */
  static of(problems: readonly ConfigProblem[]): ConfigError {
    return new ConfigError(CONFIG_INVALID, problems[0]?.keyPath ?? [], problems.map(formatProblem).join('\n'), { problems });
  }

  /** The same refusal, with its path under `prefix` (e.g. a policy's under ['routes', 3, 'authorize']). */
  within(prefix: KeyPath): ConfigError {
    return new ConfigError(this.code, [...prefix, ...this.path], this.message, { external: this.external, problems: this.problems });
  }
}

/**
 * Where compile steps that can find several problems at once put them. `silent`: the part is unusable, but
 * for a reason already reported elsewhere (a route naming a provider that failed to compile).
 */
export type ConfigReport = (error: ConfigError, silent?: boolean) => void;
