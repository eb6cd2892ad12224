/**
 * weft's kubeconfig loader (pkg/kube/kubeconfig.ts): kubectl's merge rules for $KUBECONFIG
 * lists, relative paths against the kubeconfig's directory, -data over files, --context, the
 * in-cluster service account with its rotating token, and a coded error for every missing or
 * unsupported piece (exec / auth-provider in the daemons).
 */
import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isWeftError } from '../../../pkg/errors/index.js';
import {
  accessFromKubeconfig,
  inClusterAccess,
  loadAccess,
  mergeKubeconfigs,
  parseKubeconfig,
  readKubeconfig,
  rotatingToken,
  TOKEN_REREAD_MS,
  type KubeAccess,
} from '../../../pkg/kube/kubeconfig.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

function kubeconfig(opts: {
  current?: string;
  clusters?: Record<string, Record<string, unknown>>;
  users?: Record<string, Record<string, unknown>>;
  contexts?: Record<string, Record<string, unknown>>;
}): string {
  const list = (m: Record<string, Record<string, unknown>> | undefined, field: string): unknown[] =>
    Object.entries(m ?? {}).map(([name, body]) => ({ name, [field]: body }));
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: list(opts.clusters, 'cluster'),
    users: list(opts.users, 'user'),
    contexts: list(opts.contexts, 'context'),
    ...(opts.current !== undefined ? { 'current-context': opts.current } : {}),
  });
}

const simple = kubeconfig({
  current: 'dev',
  clusters: { c: { server: 'https://10.0.0.1:6443/' } },
  users: { u: { token: 'tok' } },
  contexts: { dev: { cluster: 'c', user: 'u', namespace: 'apps' }, other: { cluster: 'c', user: 'u' } },
});

async function headers(access: KubeAccess, refresh?: boolean): Promise<Record<string, string>> {
  return await access.authHeaders(refresh);
}

function throwsCode(fn: () => unknown, code: string, message: RegExp): void {
  try {
    fn();
  } catch (err) {
    expect(isWeftError(err), String(err)).to.equal(true);
    expect((err as { code: string }).code, String(err)).to.equal(code);
    expect((err as Error).message).to.match(message);
    return;
  }
  expect.fail(`expected ${code}`);
}

describe('kubeconfig loader', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'weft-kc-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('a token user: server without the trailing slash, the context namespace, a bearer header', async () => {
    const access = accessFromKubeconfig(parseKubeconfig(simple, join(dir, 'config')));
    expect(access.server).to.equal('https://10.0.0.1:6443');
    expect(access.namespace).to.equal('apps');
    expect(await headers(access)).to.deep.equal({ Authorization: 'Bearer tok' });
    expect(access.source).to.match(/context dev in /);
  });

  it('--context picks another context; an unknown or absent one is a coded error listing what exists', () => {
    const kc = parseKubeconfig(simple, 'k');
    expect(accessFromKubeconfig(kc, { context: 'other' }).namespace).to.equal(undefined);
    throwsCode(
      () => accessFromKubeconfig(kc, { context: 'prod' }),
      'WEFT_KUBECONFIG_MISSING',
      /"prod" is not in k \(it has: dev, other\)/,
    );
    const noCurrent = parseKubeconfig(simple.replace('"current-context":"dev"', '"x":1'), 'k');
    throwsCode(
      () => accessFromKubeconfig(noCurrent),
      'WEFT_KUBECONFIG_MISSING',
      /no current-context; pass --context/,
    );
  });

  it("KUBECONFIG=a:b merges by kubectl's rules: the first file wins per name and current-context", async () => {
    const a = parseKubeconfig(
      kubeconfig({
        current: 'one',
        clusters: { c: { server: 'https://a:1' } },
        users: { u: { token: 'from-a' } },
        contexts: { one: { cluster: 'c', user: 'u' } },
      }),
      '/a',
    );
    const b = parseKubeconfig(
      kubeconfig({
        current: 'two',
        clusters: { c: { server: 'https://b:1' }, d: { server: 'https://d:1' } },
        users: { u: { token: 'from-b' } },
        contexts: { one: { cluster: 'd', user: 'u' }, two: { cluster: 'd', user: 'u' } },
      }),
      '/b',
    );
    const merged = mergeKubeconfigs([a, b]);
    expect(merged.currentContext).to.equal('one');
    expect([...merged.contexts.keys()]).to.deep.equal(['one', 'two']);
    expect(accessFromKubeconfig(merged).server).to.equal('https://a:1');
    const two = accessFromKubeconfig(merged, { context: 'two' });
    expect(two.server).to.equal('https://d:1'); // b's new cluster, a's user of the same name
    expect(await headers(two)).to.deep.equal({ Authorization: 'Bearer from-a' });
    // a file without current-context leaves it to the next one
    const none = parseKubeconfig(kubeconfig({}), '/none');
    expect(mergeKubeconfigs([none, b]).currentContext).to.equal('two');
  });

  it('relative paths resolve against the kubeconfig directory, not the working directory', async () => {
    mkdirSync(join(dir, 'kube', 'pki'), { recursive: true });
    writeFileSync(join(dir, 'kube', 'pki', 'ca.crt'), 'CA-FILE');
    writeFileSync(join(dir, 'kube', 'pki', 'u.crt'), 'CERT-FILE');
    writeFileSync(join(dir, 'kube', 'pki', 'u.key'), 'KEY-FILE');
    writeFileSync(join(dir, 'kube', 'token'), 'file-token\n');
    const file = join(dir, 'kube', 'config');
    writeFileSync(
      file,
      kubeconfig({
        current: 'x',
        clusters: {
          c: { server: 'https://s:1', 'certificate-authority': 'pki/ca.crt', 'tls-server-name': 'api.local' },
        },
        users: {
          u: { 'client-certificate': 'pki/u.crt', 'client-key': 'pki/u.key' },
          t: { tokenFile: 'token' },
        },
        contexts: { x: { cluster: 'c', user: 'u' }, y: { cluster: 'c', user: 't' } },
      }),
    );
    const access = accessFromKubeconfig(readKubeconfig(file));
    expect(access.tls.ca?.toString()).to.equal('CA-FILE');
    expect(access.tls.cert?.toString()).to.equal('CERT-FILE');
    expect(access.tls.key?.toString()).to.equal('KEY-FILE');
    expect(access.tls.servername).to.equal('api.local');
    expect(await headers(access)).to.deep.equal({});
    const tokenUser = accessFromKubeconfig(readKubeconfig(file), { context: 'y' });
    expect(await headers(tokenUser)).to.deep.equal({ Authorization: 'Bearer file-token' });
  });

  it('-data wins over the file; insecure-skip-tls-verify; username/password is basic auth', async () => {
    const kc = parseKubeconfig(
      kubeconfig({
        current: 'x',
        clusters: {
          c: {
            server: 'https://s:1',
            'certificate-authority-data': b64('CA-DATA'),
            'certificate-authority': '/does/not/exist',
          },
        },
        users: {
          u: {
            'client-certificate-data': b64('CERT'),
            'client-key-data': b64('KEY'),
            username: 'admin',
            password: 'secret',
          },
        },
        contexts: { x: { cluster: 'c', user: 'u' } },
      }),
      join(dir, 'k'),
    );
    const access = accessFromKubeconfig(kc);
    expect(access.tls).to.deep.equal({
      ca: Buffer.from('CA-DATA'),
      cert: Buffer.from('CERT'),
      key: Buffer.from('KEY'),
    });
    expect(await headers(access)).to.deep.equal({ Authorization: `Basic ${b64('admin:secret')}` });
    const insecure = parseKubeconfig(
      kubeconfig({
        current: 'x',
        clusters: { c: { server: 'https://s:1', 'insecure-skip-tls-verify': true } },
        contexts: { x: { cluster: 'c' } },
      }),
      'k',
    );
    expect(accessFromKubeconfig(insecure).tls).to.deep.equal({ insecure: true });
  });

  it('missing or unsupported pieces are coded errors that name the file and the field', () => {
    const cases: [string, Parameters<typeof kubeconfig>[0], string, RegExp][] = [
      [
        'no server',
        { current: 'x', clusters: { c: {} }, contexts: { x: { cluster: 'c' } } },
        'WEFT_KUBECONFIG_INVALID',
        /cluster c in .*k has no server/,
      ],
      [
        'bad server',
        { current: 'x', clusters: { c: { server: 'not a url' } }, contexts: { x: { cluster: 'c' } } },
        'WEFT_KUBECONFIG_INVALID',
        /is not a URL/,
      ],
      [
        'ftp server',
        { current: 'x', clusters: { c: { server: 'ftp://h' } }, contexts: { x: { cluster: 'c' } } },
        'WEFT_KUBECONFIG_INVALID',
        /not http\(s\)/,
      ],
      [
        'unknown cluster',
        { current: 'x', contexts: { x: { cluster: 'gone' } } },
        'WEFT_KUBECONFIG_INVALID',
        /names cluster "gone", which is not there/,
      ],
      [
        'unknown user',
        {
          current: 'x',
          clusters: { c: { server: 'https://s' } },
          contexts: { x: { cluster: 'c', user: 'gone' } },
        },
        'WEFT_KUBECONFIG_INVALID',
        /names user "gone"/,
      ],
      [
        'cert without key',
        {
          current: 'x',
          clusters: { c: { server: 'https://s' } },
          users: { u: { 'client-certificate-data': b64('C') } },
          contexts: { x: { cluster: 'c', user: 'u' } },
        },
        'WEFT_KUBECONFIG_INVALID',
        /certificate without a key/,
      ],
      [
        'unreadable CA',
        {
          current: 'x',
          clusters: { c: { server: 'https://s', 'certificate-authority': 'nope.crt' } },
          contexts: { x: { cluster: 'c' } },
        },
        'WEFT_KUBECONFIG_INVALID',
        /cannot read certificate-authority .*nope\.crt/,
      ],
      [
        'CA and insecure',
        {
          current: 'x',
          clusters: {
            c: {
              server: 'https://s',
              'certificate-authority-data': b64('CA'),
              'insecure-skip-tls-verify': true,
            },
          },
          contexts: { x: { cluster: 'c' } },
        },
        'WEFT_KUBECONFIG_INVALID',
        /both a certificate authority and insecure-skip-tls-verify/,
      ],
      [
        'proxy-url',
        {
          current: 'x',
          clusters: { c: { server: 'https://s', 'proxy-url': 'http://p' } },
          contexts: { x: { cluster: 'c' } },
        },
        'WEFT_KUBECONFIG_INVALID',
        /proxy-url/,
      ],
      [
        'impersonation',
        {
          current: 'x',
          clusters: { c: { server: 'https://s' } },
          users: { u: { token: 't', as: 'bob' } },
          contexts: { x: { cluster: 'c', user: 'u' } },
        },
        'WEFT_KUBECONFIG_INVALID',
        /impersonates \(as\)/,
      ],
      [
        'exec',
        {
          current: 'x',
          clusters: { c: { server: 'https://s' } },
          users: { u: { exec: { command: 'aws' } } },
          contexts: { x: { cluster: 'c', user: 'u' } },
        },
        'WEFT_KUBE_AUTH_UNSUPPORTED',
        /user u in .* authenticates with exec, .*token, tokenFile or client certificate, or run them in-cluster/,
      ],
      [
        'auth-provider',
        {
          current: 'x',
          clusters: { c: { server: 'https://s' } },
          users: { u: { 'auth-provider': { name: 'oidc' } } },
          contexts: { x: { cluster: 'c', user: 'u' } },
        },
        'WEFT_KUBE_AUTH_UNSUPPORTED',
        /authenticates with auth-provider/,
      ],
    ];
    for (const [name, cfg, code, message] of cases) {
      const kc = parseKubeconfig(kubeconfig(cfg), join(dir, 'k'));
      try {
        accessFromKubeconfig(kc);
        expect.fail(`${name}: no error`);
      } catch (err) {
        expect((err as { code?: string }).code, `${name}: ${String(err)}`).to.equal(code);
        expect((err as Error).message, name).to.match(message);
      }
    }
    throwsCode(() => parseKubeconfig('clusters: [', 'k'), 'WEFT_KUBECONFIG_INVALID', /k is not YAML/);
    throwsCode(() => parseKubeconfig('- a', 'k'), 'WEFT_KUBECONFIG_INVALID', /not a map/);
    throwsCode(
      () => parseKubeconfig('clusters: {a: 1}', 'k'),
      'WEFT_KUBECONFIG_INVALID',
      /clusters is not a list/,
    );
    throwsCode(
      () => parseKubeconfig('users: [{user: {}}]', 'k'),
      'WEFT_KUBECONFIG_INVALID',
      /users\[0\] has no name/,
    );
    throwsCode(() => readKubeconfig(join(dir, 'absent')), 'WEFT_KUBECONFIG_MISSING', /absent does not exist/);
  });

  it('exec users reach the plugins hook when one is given (weftctl), and only then', async () => {
    const kc = parseKubeconfig(
      kubeconfig({
        current: 'x',
        clusters: { c: { server: 'https://s' } },
        users: { u: { exec: { command: 'login-helper' } } },
        contexts: { x: { cluster: 'c', user: 'u' } },
      }),
      'k',
    );
    const seen: unknown[] = [];
    const access = accessFromKubeconfig(kc, {
      plugins: (user, name) => {
        seen.push([name, user.exec]);
        return () => ({ Authorization: 'Bearer from-plugin' });
      },
    });
    expect(seen).to.deep.equal([['u', { command: 'login-helper' }]]);
    expect(await headers(access)).to.deep.equal({ Authorization: 'Bearer from-plugin' });
  });

  it('a rotating token file is re-read after a minute or when asked (a 401), and survives a brief gap', async () => {
    const file = join(dir, 'token');
    writeFileSync(file, 'one\n');
    let now = 1_000_000;
    const auth = rotatingToken(file, () => now);
    expect(await auth()).to.deep.equal({ Authorization: 'Bearer one' });
    writeFileSync(file, 'two');
    now += TOKEN_REREAD_MS - 1;
    expect(await auth()).to.deep.equal({ Authorization: 'Bearer one' });
    expect(await auth(true)).to.deep.equal({ Authorization: 'Bearer two' });
    writeFileSync(file, 'three');
    now += TOKEN_REREAD_MS;
    expect(await auth()).to.deep.equal({ Authorization: 'Bearer three' });
    rmSync(file);
    now += TOKEN_REREAD_MS;
    expect(await auth()).to.deep.equal({ Authorization: 'Bearer three' });
    throwsCode(
      () => rotatingToken(join(dir, 'none'))(),
      'WEFT_KUBECONFIG_MISSING',
      /cannot read the token file/,
    );
  });

  it('in-cluster: the service account files and KUBERNETES_SERVICE_HOST/PORT (IPv6 in brackets)', async () => {
    writeFileSync(join(dir, 'token'), 'sa-token');
    writeFileSync(join(dir, 'ca.crt'), 'SA-CA');
    writeFileSync(join(dir, 'namespace'), 'weft-system');
    const env = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' };
    const access = inClusterAccess(env, dir);
    expect(access.server).to.equal('https://10.96.0.1:443');
    expect(access.tls).to.deep.equal({ ca: Buffer.from('SA-CA') });
    expect(access.namespace).to.equal('weft-system');
    expect(await headers(access)).to.deep.equal({ Authorization: 'Bearer sa-token' });
    expect(
      inClusterAccess({ KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' }, dir).server,
    ).to.equal('https://[fd00::1]:443');
    throwsCode(() => inClusterAccess({}, dir), 'WEFT_KUBECONFIG_MISSING', /not in a pod/);
    throwsCode(
      () => inClusterAccess(env, join(dir, 'absent')),
      'WEFT_KUBECONFIG_MISSING',
      /token file .*absent\/token/,
    );
    rmSync(join(dir, 'ca.crt'));
    throwsCode(() => inClusterAccess(env, dir), 'WEFT_KUBECONFIG_MISSING', /service account's CA/);
  });

  it("loadAccess: --kubeconfig, else $KUBECONFIG, else in-cluster, else ~/.kube/config (controller-runtime's order)", () => {
    writeFileSync(join(dir, 'token'), 'sa');
    writeFileSync(join(dir, 'ca.crt'), 'CA');
    const file = (name: string, server: string): string => {
      const path = join(dir, name);
      writeFileSync(
        path,
        kubeconfig({ current: 'x', clusters: { c: { server } }, contexts: { x: { cluster: 'c' } } }),
      );
      return path;
    };
    const flag = file('flag', 'https://flag:1');
    const env1 = file('env1', 'https://env1:1');
    const env2 = file('env2', 'https://env2:1');
    mkdirSync(join(dir, 'home', '.kube'), { recursive: true });
    writeFileSync(
      join(dir, 'home', '.kube', 'config'),
      kubeconfig({
        current: 'x',
        clusters: { c: { server: 'https://home:1' } },
        contexts: { x: { cluster: 'c' } },
      }),
    );
    const pod = {
      KUBERNETES_SERVICE_HOST: '10.96.0.1',
      KUBERNETES_SERVICE_PORT: '443',
      HOME: join(dir, 'home'),
    };
    const server = (opts: Parameters<typeof loadAccess>[0]): string =>
      loadAccess({ serviceAccountDir: dir, ...opts }).server;
    expect(server({ kubeconfig: flag, env: { ...pod, KUBECONFIG: env1 } })).to.equal('https://flag:1');
    expect(server({ env: { ...pod, KUBECONFIG: `${join(dir, 'missing')}:${env2}:${env1}` } })).to.equal(
      'https://env2:1',
    );
    expect(server({ env: pod })).to.equal('https://10.96.0.1:443');
    expect(server({ env: { HOME: join(dir, 'home') } })).to.equal('https://home:1');
    throwsCode(
      () => server({ env: { HOME: join(dir, 'nohome') } }),
      'WEFT_KUBECONFIG_MISSING',
      /nohome\/\.kube\/config does not exist/,
    );
  });
});
