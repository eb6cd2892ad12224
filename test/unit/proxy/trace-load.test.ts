import { expect } from 'chai';
import { propagate, requestId } from '../../../proxy/telemetry/trace.js';
import { configFromText } from '../../../proxy/config/load.js';
import { isWeftError } from '../../../pkg/errors/index.js';
import { parse } from 'yaml';

describe('proxy trace context and request ids', () => {
  it('request ids are unique v4-shaped UUIDs', () => {
    const ids = new Set(Array.from({ length: 2000 }, () => requestId()));
    expect(ids.size).to.equal(2000);
    for (const id of [...ids].slice(0, 50))
      expect(id).to.match(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
  // [name, incoming headers, expected traceparent (null = freshly generated)]
  const TABLE: [string, Record<string, string>, string | null][] = [
    [
      'W3C kept as is',
      { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
      '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    ],
    [
      'W3C preferred over B3',
      {
        traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
        'x-b3-traceid': 'a'.repeat(32),
        'x-b3-spanid': 'b'.repeat(16),
      },
      '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    ],
    [
      'multi-header B3',
      { 'x-b3-traceid': 'a'.repeat(32), 'x-b3-spanid': 'b'.repeat(16), 'x-b3-sampled': '1' },
      `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`,
    ],
    [
      '64-bit B3 trace id is left-padded',
      { 'x-b3-traceid': 'c'.repeat(16), 'x-b3-spanid': 'b'.repeat(16) },
      `00-${'0'.repeat(16)}${'c'.repeat(16)}-${'b'.repeat(16)}-01`,
    ],
    [
      'single b3 header, not sampled',
      { b3: `${'a'.repeat(32)}-${'b'.repeat(16)}-0` },
      `00-${'a'.repeat(32)}-${'b'.repeat(16)}-00`,
    ],
    ['malformed B3 → new trace', { 'x-b3-traceid': 'zz', 'x-b3-spanid': 'b'.repeat(16) }, null],
    ['nothing → new trace', {}, null],
  ];
  for (const [name, headers, want] of TABLE) {
    it(name, () => {
      const h: Record<string, string | string[] | undefined> = { ...headers };
      const id = propagate(h);
      expect(h['x-request-id']).to.equal(id);
      if (want === null) expect(h.traceparent).to.match(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
      else expect(h.traceparent).to.equal(want);
    });
  }
  it('keeps an incoming x-request-id', () => {
    const h: Record<string, string | string[] | undefined> = { 'x-request-id': 'given' };
    expect(propagate(h)).to.equal('given');
  });
});

describe('proxy config loading (standalone file forms)', () => {
  const SE = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: a, namespace: default}
spec:
  hosts: [a.default.svc.cluster.local]
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: 127.0.0.1}]
`;
  it('accepts Istio YAML and ignores kinds the proxy does not use, with a warning', () => {
    const l = configFromText(
      `${SE}---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: p, namespace: default}\nspec: {}\n`,
    );
    expect(l.form).to.equal('istio');
    expect(l.config.clusters.map((c) => c.name)).to.deep.equal(['outbound|80||a.default.svc.cluster.local']);
    expect(l.warnings.join('\n')).to.match(/PeerAuthentication p is not used/);
  });
  it('unwraps kind: List', () => {
    const l = configFromText(JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [parse(SE)] }));
    expect(l.config.clusters).to.have.length(1);
  });
  it('accepts a ProxyConfig document and lists every structural problem', () => {
    try {
      configFromText(
        'apiVersion: proxy.weft.dev/v1\nkind: ProxyConfig\nversion: ""\nlisteners: 3\nclusters: []\n',
      );
      expect.fail('should throw');
    } catch (err) {
      expect(isWeftError(err, 'WEFT_PROXY_CONFIG_INVALID')).to.equal(true);
      expect(String(err))
        .to.match(/2 problem\(s\)/)
        .and.match(/version/)
        .and.match(/listeners: must be a list/);
    }
  });
  it('YAML syntax errors have their own code; empty files are rejected', () => {
    expect(() => configFromText('kind: [unclosed')).to.throw(/WEFT_YAML_SYNTAX|Flow sequence/);
    expect(() => configFromText('')).to.throw(/no documents/);
  });
  it('invalid Istio objects are rejected with the validation engine messages', () => {
    expect(() => configFromText(SE.replace('resolution: STATIC', 'resolution: SOMETIMES'))).to.throw(
      /ServiceEntry default\/a: spec\.resolution/,
    );
  });
});
