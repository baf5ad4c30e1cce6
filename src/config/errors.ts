/** One problem in a config file, located as precisely as the YAML allows. */
export interface ConfigProblem {
  file: string;
  path: string; // key path such as routes[2].upstream.url ('' for the document)
  message: string;
  line?: number;
  col?: number;
}

export function formatProblem(p: ConfigProblem): string {
  const where = p.line === undefined ? '' : ` at line ${p.line}:${p.col ?? 1}`;
  return `${p.file}: ${p.path ? `${p.path}: ` : ''}${p.message}${where}`;
}

/** Thrown at load time only (never on the request path): the config cannot be used. */
export class ConfigError extends Error {
  readonly code = 'GW_ERR_CONFIG_INVALID';
  readonly problems: readonly ConfigProblem[];

  constructor(problems: ConfigProblem[]) {
    super(problems.map(formatProblem).join('\n'));
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out ? `.${String(key)}` : String(key);
  }
  return out;
}

/** A compile step's refusal of one value, naming its key path relative to the part being compiled. */
export class ConfigPathError extends TypeError {
  readonly path: PropertyKey[];
  constructor(message: string, path: PropertyKey[]) {
    super(message);
    this.path = path;
  }
}
