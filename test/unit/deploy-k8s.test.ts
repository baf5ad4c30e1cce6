// deploy/k8s without a cluster: every document validates against the Kubernetes schemas (strictly: unknown fields
// are errors), the objects hang together (selectors, ConfigMap/Secret references, probes on the admin port), the
// pods are locked down, and the gateway.yaml in each ConfigMap loads with the gateway's own loader.
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { postureFindings } from '../../src/cli/posture/checks.ts';
import { compileConfig } from '../../src/pipeline/compile.ts';
import { loadConfigFile } from '../../src/config/load.ts';
import { EXT_AUTHZ_PREFIX } from '../../src/pipeline/ext-authz.ts';
import { defaultHeaderNames } from '../../src/proxy/identity-headers.ts';
import { root } from '../helpers/build.ts';
import { tempDir } from '../helpers/gateway.ts';
import { schemaName, validateManifest } from '../helpers/k8s.ts';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- manifests are free-form YAML

const dir = join(root, 'deploy', 'k8s');
const files = readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort();
const docsOf = (file: string): Obj[] => {
  const docs = parseAllDocuments(readFileSync(join(dir, file), 'utf8'));
  for (const d of docs) expect(d.errors, file).toEqual([]);
  return docs.map((d) => d.toJS() as Obj).filter((d) => d !== null);
};
const all = files.flatMap((file) => docsOf(file).map((doc) => ({ file, doc })));
const ofKind = (kind: string, file?: string) => all.filter((x) => x.doc.kind === kind && (file === undefined || x.file === file)).map((x) => x.doc);
const deployments = ofKind('Deployment');
const podLabels = deployments.map((d) => d.spec.template.metadata.labels as Record<string, string>);
const matches = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);
const isGateway = (c: Obj) => String(c.image).startsWith('zt-gateway:');

describe('deploy/k8s manifests', () => {
  it('has the sidecar, standalone and NetworkPolicy files with the expected objects', () => {
    expect(files).toEqual(expect.arrayContaining(['networkpolicy.yaml', 'sidecar.yaml', 'standalone.yaml']));
    const kinds = (file: string) => docsOf(file).map((d) => d.kind).sort();
    expect(kinds('sidecar.yaml')).toEqual(['ConfigMap', 'Deployment', 'PodDisruptionBudget', 'Service']);
    expect(kinds('networkpolicy.yaml')).toEqual(['NetworkPolicy']);
    expect(kinds('standalone.yaml')).toEqual(['ConfigMap', 'Deployment', 'Deployment', 'NetworkPolicy', 'NetworkPolicy', 'PodDisruptionBudget', 'Service', 'Service']);
  });

  it.each(all.map((x) => [`${x.file}: ${x.doc.kind} ${x.doc.metadata?.name}`, x.doc]))('%s validates against its schema', async (_name, doc) => {
    expect(await validateManifest(doc)).toEqual([]);
  });

  it('every pod runs as non-root with seccomp RuntimeDefault, no service account token, read-only root and no capabilities', () => {
    expect(deployments.length).toBeGreaterThanOrEqual(3); // sidecar (1) + standalone (2), and any added later
    for (const d of deployments) {
      const pod = d.spec.template.spec;
      expect(pod.securityContext, d.metadata.name).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
      expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
      expect(pod.automountServiceAccountToken).toBe(false);
      for (const c of pod.containers) {
        expect(c.securityContext, `${d.metadata.name}/${c.name}`).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
        expect(c.resources?.limits?.memory).toBeDefined();
      }
    }
  });

  it('gateway containers: probes on the admin port, a tmpfs /tmp, config from the ConfigMap next to them', () => {
    const gateways = deployments.flatMap((d) => d.spec.template.spec.containers.filter(isGateway).map((c: Obj) => ({ d, c })));
    expect(gateways.length).toBeGreaterThanOrEqual(2);
    for (const { d, c } of gateways) {
      const admin = c.ports.find((p: Obj) => p.name === 'admin');
      expect(admin.containerPort).toBe(9090);
      expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'admin' });
      expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'admin' });
      expect(c.args).toEqual(['start', '--config', '/etc/zt-gateway/gateway.yaml']);
      const volumes = new Map<string, Obj>(d.spec.template.spec.volumes.map((v: Obj) => [v.name, v]));
      const tmp = c.volumeMounts.find((m: Obj) => m.mountPath === '/tmp');
      expect(volumes.get(tmp.name)?.emptyDir).toMatchObject({ medium: 'Memory' });
      const config = c.volumeMounts.find((m: Obj) => m.mountPath === '/etc/zt-gateway');
      expect(config.readOnly).toBe(true);
      const sources: Obj[] = volumes.get(config.name)?.projected.sources;
      const configMapName = sources.find((s) => s.configMap)?.configMap.name;
      const cm = ofKind('ConfigMap').find((m) => m.metadata.name === configMapName);
      expect(cm?.data['gateway.yaml']).toContain(`listen: 0.0.0.0:${admin.containerPort}`);
      // Every ${env:X} in the config is set by the container from a Secret key.
      const wanted = [...(cm?.data['gateway.yaml'] as string).matchAll(/\$\{env:([A-Z0-9_]+)\}/g)].map((m) => m[1]).sort();
      const given = (c.env ?? []).filter((e: Obj) => e.valueFrom?.secretKeyRef).map((e: Obj) => e.name).sort();
      expect(given).toEqual(wanted);
    }
  });

  it('Secrets are referenced, never shipped, and each one is named in the file header (kubectl create secret …)', () => {
    expect(ofKind('Secret')).toEqual([]);
    for (const file of ['sidecar.yaml', 'standalone.yaml']) {
      const text = readFileSync(join(dir, file), 'utf8');
      const names = new Set<string>();
      for (const d of ofKind('Deployment', file)) {
        const pod = d.spec.template.spec;
        for (const v of pod.volumes ?? []) for (const s of v.projected?.sources ?? []) if (s.secret) names.add(s.secret.name);
        for (const c of pod.containers) for (const e of c.env ?? []) if (e.valueFrom?.secretKeyRef) names.add(e.valueFrom.secretKeyRef.name);
      }
      expect(names.size).toBeGreaterThan(0);
      for (const name of names) expect(text, `${file}: ${name}`).toMatch(new RegExp(`^#\\s+kubectl create secret \\S+ ${name} `, 'm'));
    }
  });

  it('Services, PodDisruptionBudgets and NetworkPolicies select pods that exist', () => {
    for (const s of ofKind('Service')) expect(podLabels.some((l) => matches(s.spec.selector, l)), s.metadata.name).toBe(true);
    for (const p of ofKind('PodDisruptionBudget')) {
      expect(p.spec.minAvailable).toBe(1);
      expect(podLabels.some((l) => matches(p.spec.selector.matchLabels, l)), p.metadata.name).toBe(true);
    }
    for (const n of ofKind('NetworkPolicy')) expect(podLabels.some((l) => matches(n.spec.podSelector.matchLabels, l)), n.metadata.name).toBe(true);
  });

  it('sidecar: the app listens on 127.0.0.1 only, exposes no port, and the pod admits the gateway port only', () => {
    const [pod] = ofKind('Deployment', 'sidecar.yaml').map((d) => d.spec.template.spec);
    const app = pod.containers.find((c: Obj) => !isGateway(c));
    expect(app.command.join(' ')).toMatch(/--bind 127\.0\.0\.1\b/);
    expect(app.ports).toBeUndefined();
    const [policy] = ofKind('NetworkPolicy', 'networkpolicy.yaml');
    expect(policy.spec.policyTypes).toEqual(['Ingress']);
    expect(policy.spec.ingress.flatMap((r: Obj) => r.ports)).toEqual([{ protocol: 'TCP', port: 8443 }]);
    const [service] = ofKind('Service', 'sidecar.yaml');
    expect(service.spec.ports).toEqual([{ name: 'https', port: 443, targetPort: 'https' }]);
  });

  it('standalone: only the gateway pods may reach the app, on the app port', () => {
    const gateway = ofKind('Deployment', 'standalone.yaml').find((d) => d.spec.template.spec.containers.some(isGateway));
    const app = ofKind('Deployment', 'standalone.yaml').find((d) => d !== gateway);
    const policy = ofKind('NetworkPolicy', 'standalone.yaml').find((n) => matches(n.spec.podSelector.matchLabels, app?.spec.template.metadata.labels));
    expect(policy?.spec.policyTypes).toEqual(['Ingress']);
    expect(policy?.spec.ingress).toEqual([
      { from: [{ podSelector: { matchLabels: gateway?.spec.template.metadata.labels } }], ports: [{ protocol: 'TCP', port: app?.spec.template.spec.containers[0].ports[0].containerPort }] },
    ]);
  });
});

describe('the gateway.yaml in each ConfigMap', () => {
  // The mounted layout: the ConfigMap's gateway.yaml with the Secret files beside it, env from the Secret keys.
  async function loadMounted(yaml: string) {
    const mount = tempDir('ztgw-k8s-');
    try {
      mkdirSync(join(mount, 'tls'));
      mkdirSync(join(mount, 'assertion'));
      copyFileSync(join(root, 'examples/demo/certs/DEMO-ONLY-localhost.crt'), join(mount, 'tls', 'tls.crt'));
      copyFileSync(join(root, 'examples/demo/certs/DEMO-ONLY-localhost.key'), join(mount, 'tls', 'tls.key'));
      copyFileSync(join(root, 'examples/demo/certs/DEMO-ONLY-assertion.key'), join(mount, 'assertion', 'assertion.key'));
      writeFileSync(join(mount, 'gateway.yaml'), yaml);
      const env = { ZT_REDIS_URL: 'redis://127.0.0.1:6379/0', OIDC_CLIENT_SECRET: 'not-a-real-secret', SESSION_SECRET: 'a-session-secret-of-at-least-32-characters', ZT_ADMIN_TOKEN_HASH: 'ab'.repeat(32) };
      const loaded = loadConfigFile(join(mount, 'gateway.yaml'), env);
      await compileConfig(loaded);
      return postureFindings(loaded);
    } finally {
      rmSync(mount, { recursive: true, force: true });
    }
  }
  const configMaps = all.filter((x) => x.doc.kind === 'ConfigMap');

  it.each(configMaps.map((x) => [x.file, x.doc.data['gateway.yaml'] as string]))('%s: loads and compiles; its only high finding is documented', async (file, yaml) => {
    const high = (await loadMounted(yaml)).filter((f) => f.severity === 'high').map((f) => f.id);
    // The standalone layout reaches the app over plain HTTP on the pod network: its header says so.
    expect(high).toEqual(file === 'standalone.yaml' ? ['upstream-plaintext'] : []);
    if (file === 'standalone.yaml') expect(readFileSync(join(dir, file), 'utf8')).toContain('upstream-plaintext (high)');
  });
});

describe('the manifest validator catches broken manifests', () => {
  const sidecar = ofKind('Deployment', 'sidecar.yaml')[0] as Obj;
  const broken = (mutate: (d: Obj) => void) => {
    const copy = structuredClone(sidecar);
    mutate(copy);
    return validateManifest(copy);
  };

  it('a wrong-typed field', async () => {
    expect(await broken((d) => (d.spec.replicas = 'two'))).toEqual(['/spec/replicas: must be integer']);
    expect(await broken((d) => (d.spec.template.spec.containers[1].readinessProbe.periodSeconds = '5s'))).toEqual([
      '/spec/template/spec/containers/1/readinessProbe/periodSeconds: must be integer',
    ]);
  });

  it('a misspelled field (it would be dropped silently by the API server)', async () => {
    expect(await broken((d) => (d.spec.template.spec.containers[1].securityContext.readOnlyRootFileSystem = true))).toEqual([
      '/spec/template/spec/containers/1/securityContext/readOnlyRootFileSystem: unknown field',
    ]);
  });

  it('a missing required field, a bad enum, and an unknown kind', async () => {
    expect(await broken((d) => delete d.spec.template.spec.containers[0].name)).toEqual(['/spec/template/spec/containers/0: missing required field "name"']);
    expect(await broken((d) => (d.spec.template.spec.securityContext.seccompProfile.type = 'Sometimes'))).toEqual([
      expect.stringMatching(/^\/spec\/template\/spec\/securityContext\/seccompProfile\/type: must be one of \[.*"RuntimeDefault"/),
    ]);
    expect(await validateManifest({ apiVersion: 'apps/v1', kind: 'Deploymnet', metadata: { name: 'x' } })).toEqual(['/: unknown apiVersion/kind apps/v1 Deploymnet']);
    expect(await broken((d) => (d.apiVersion = 'apps/v2'))).toEqual([expect.stringMatching(/^\/: unknown apiVersion\/kind/)]);
  });

  it('maps apiVersion/kind to the schema names', () => {
    expect(schemaName('v1', 'ConfigMap')).toBe('IoK8sApiCoreV1ConfigMap');
    expect(schemaName('networking.k8s.io/v1', 'NetworkPolicy')).toBe('IoK8sApiNetworkingV1NetworkPolicy');
    expect(schemaName('policy/v1', 'PodDisruptionBudget')).toBe('IoK8sApiPolicyV1PodDisruptionBudget');
  });
});

describe('deploy/ext-authz manifests (Envoy Gateway, Istio)', () => {
  const extDir = join(root, 'deploy', 'ext-authz');
  const parse = (file: string): Obj[] => {
    const docs = parseAllDocuments(readFileSync(join(extDir, file), 'utf8'));
    for (const d of docs) expect(d.errors, file).toEqual([]);
    return docs.map((d) => d.toJS() as Obj).filter((d) => d !== null);
  };
  // The identity headers, and Cookie (the answer's copy without the gateway's session cookie).
  const identity = [...Object.values(defaultHeaderNames('X-ZT-')).map((n) => n.toLowerCase()), 'cookie'].sort();
  const passed = ['authorization', 'cookie', 'origin', 'sec-fetch-site'];

  it('envoy-gateway.yaml: a SecurityPolicy with HTTP extAuth on the prefix, and the login pages routed unchecked', () => {
    const docs = parse('envoy-gateway.yaml');
    expect(docs.map((d) => `${d.apiVersion} ${d.kind}`)).toEqual(['gateway.envoyproxy.io/v1alpha1 SecurityPolicy', 'gateway.networking.k8s.io/v1 HTTPRoute']);
    const ext = (docs[0] as Obj).spec.extAuth;
    expect(ext.failOpen).toBe(false);
    expect(ext.http.path).toBe(EXT_AUTHZ_PREFIX);
    expect(ext.headersToExtAuth).toEqual(expect.arrayContaining(passed));
    expect([...ext.http.headersToBackend].sort()).toEqual(identity);
    const paths: string[] = (docs[1] as Obj).spec.rules.flatMap((r: Obj) => r.matches.map((m: Obj) => m.path.value));
    expect(paths).toContain('/.zt/callback');
    for (const p of paths) expect(p.startsWith(EXT_AUTHZ_PREFIX) || p.startsWith('/.zt/verify'), p).toBe(false);
  });

  it('istio.yaml: an envoyExtAuthzHttp provider on the prefix and a CUSTOM AuthorizationPolicy naming it', () => {
    const docs = parse('istio.yaml');
    expect(docs.map((d) => d.kind)).toEqual(['IstioOperator', 'AuthorizationPolicy']);
    const provider = (docs[0] as Obj).spec.meshConfig.extensionProviders[0];
    const http = provider.envoyExtAuthzHttp;
    expect(http.pathPrefix).toBe(EXT_AUTHZ_PREFIX);
    expect(http.failOpen).toBe(false);
    expect(http.includeRequestHeadersInCheck).toEqual(expect.arrayContaining(passed));
    expect([...http.headersToUpstreamOnAllow].sort()).toEqual(identity);
    expect(http.headersToDownstreamOnDeny).toEqual(expect.arrayContaining(['content-type', 'set-cookie']));
    const policy = (docs[1] as Obj).spec;
    expect(policy.action).toBe('CUSTOM');
    expect(policy.provider.name).toBe(provider.name);
    expect(policy.rules).toEqual([{}]);
  });
});
