// Kubernetes manifest validation without a cluster, like `kubeconform -strict`: the object is checked against
// the schema of its apiVersion/kind from kubernetes-models (the Kubernetes OpenAPI definitions compiled into
// ajv validators), and any field the schema does not know is an error (the API server would drop it silently:
// a misspelled readOnlyRootFilesystem is a pod with a writable root).

interface SchemaModule {
  validate: ((data: unknown) => boolean) & { errors?: { instancePath: string; message?: string; keyword: string; params: unknown }[] | null };
}

/** apps/v1 Deployment → IoK8sApiAppsV1Deployment; v1 ConfigMap → IoK8sApiCoreV1ConfigMap. */
export function schemaName(apiVersion: string, kind: string): string {
  const [group, version] = apiVersion.includes('/') ? (apiVersion.split('/') as [string, string]) : ['core', apiVersion];
  const g = group.split('.')[0] as string;
  const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
  return `IoK8sApi${cap(g)}${cap(version)}${kind}`;
}

interface Visit {
  path: string;
  value: Record<string, unknown>;
  visited: Set<string>;
}

/** A copy of `value` whose objects record which keys the validator read (maps are read by enumeration). */
function tracked(value: unknown, path: string, visits: Visit[]): unknown {
  if (Array.isArray(value)) return value.map((v, i) => tracked(v, `${path}/${i}`, visits));
  if (value === null || typeof value !== 'object') return value;
  const visit: Visit = { path, value: value as Record<string, unknown>, visited: new Set() };
  visits.push(visit);
  const inner = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, tracked(v, `${path}/${k}`, visits)]));
  return new Proxy(inner, {
    get(target, key, receiver) {
      if (typeof key === 'string') visit.visited.add(key);
      return Reflect.get(target, key, receiver);
    },
    ownKeys(target) {
      for (const key of Reflect.ownKeys(target)) if (typeof key === 'string') visit.visited.add(key);
      return Reflect.ownKeys(target);
    },
  });
}

/** The compiled validators carry no messages: ajv's keyword and params, in words. */
function describe(keyword: string, params: Record<string, unknown>): string {
  if (keyword === 'type') return `must be ${String(params.type)}`;
  if (keyword === 'required') return `missing required field "${String(params.missingProperty)}"`;
  if (keyword === 'enum') return `must be one of ${JSON.stringify(params.allowedValues)}`;
  return `${keyword} ${JSON.stringify(params)}`;
}

/** Problems of one manifest document, as `/json/pointer: message`; [] when it is valid. */
export async function validateManifest(doc: unknown): Promise<string[]> {
  if (doc === null || typeof doc !== 'object') return ['/: not an object'];
  const { apiVersion, kind } = doc as { apiVersion?: unknown; kind?: unknown };
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') return ['/: apiVersion and kind are required'];
  let mod: SchemaModule;
  try {
    mod = (await import(`kubernetes-models/_schemas/${schemaName(apiVersion, kind)}`)) as SchemaModule;
  } catch {
    return [`/: unknown apiVersion/kind ${apiVersion} ${kind}`];
  }
  const visits: Visit[] = [];
  const ok = mod.validate(tracked(doc, '', visits));
  const problems = ok ? [] : (mod.validate.errors ?? []).map((e) => `${e.instancePath || '/'}: ${describe(e.keyword, e.params as Record<string, unknown>)}`);
  for (const v of visits) for (const key of Object.keys(v.value)) if (!v.visited.has(key)) problems.push(`${v.path}/${key}: unknown field`);
  return problems;
}
