import { expect } from 'chai';
import {
  backoffMs,
  compileRetry,
  isRetriable,
  NO_RETRY,
  DEFAULT_RETRY_POLICY,
  type AttemptOutcome,
} from '../../../proxy/router/retry.js';
import { convertRetries } from '../../../pkg/translate/index.js';

const resp = (status: number, grpcStatus?: string): AttemptOutcome =>
  grpcStatus === undefined ? { kind: 'response', status } : { kind: 'response', status, grpcStatus };

describe('proxy retry decisions', () => {
  const dflt = compileRetry(undefined, 0);
  // [policy name, policy, outcome, retriable]
  const five = compileRetry(convertRetries({ attempts: 3, retryOn: '5xx' }), 0);
  const gw = compileRetry(convertRetries({ attempts: 3, retryOn: 'gateway-error' }), 0);
  const codes = compileRetry(convertRetries({ attempts: 3, retryOn: '429,connect-failure' }), 0);
  const reset = compileRetry(convertRetries({ attempts: 1, retryOn: 'reset' }), 0);
  const grpc = compileRetry(convertRetries({ attempts: 1, retryOn: 'unavailable' }), 0);
  const TABLE: [string, ReturnType<typeof compileRetry>, AttemptOutcome, boolean][] = [
    ['default: 503 not retried since Istio 1.24 (#52111)', dflt, resp(503), false],
    ['default: 429 not retried', dflt, resp(429), false],
    ['default: 500 is not retried', dflt, resp(500), false],
    ['default: 502 is not retried', dflt, resp(502), false],
    ['default: connect failure', dflt, { kind: 'connect-failure' }, true],
    ['default: reset is not "503"', dflt, { kind: 'reset' }, false],
    ['default: per-try timeout not retried', dflt, { kind: 'per-try-timeout' }, false],
    ['default: grpc unavailable (14)', dflt, resp(200, '14'), true],
    ['default: grpc cancelled (1)', dflt, resp(200, '1'), true],
    ['default: grpc internal (13) not retried', dflt, resp(200, '13'), false],
    ['5xx: 500', five, resp(500), true],
    ['5xx: 404', five, resp(404), false],
    ['5xx: reset', five, { kind: 'reset' }, true],
    ['5xx: connect failure', five, { kind: 'connect-failure' }, true],
    ['5xx: per-try timeout', five, { kind: 'per-try-timeout' }, true],
    ['5xx: 503 through 5xx', five, resp(503), true],
    ['gateway-error: 502', gw, resp(502), true],
    ['gateway-error: 500', gw, resp(500), false],
    ['codes: 429 via retriable-status-codes', codes, resp(429), true],
    ['codes: 503 no longer listed', codes, resp(503), false],
    ['reset: reset', reset, { kind: 'reset' }, true],
    ['reset: 503 is not a reset', reset, resp(503), false],
    ['grpc unavailable only', grpc, resp(200, '14'), true],
    ['disabled', NO_RETRY, resp(503), false],
  ];
  for (const [name, p, o, want] of TABLE) it(name, () => expect(isRetriable(p, o)).to.equal(want));

  it('Istio defaults: 2 attempts, 25 ms backoff, no status code', () => {
    expect(dflt.attempts).to.equal(2);
    expect(dflt.backoffBaseMs).to.equal(25);
    expect([...dflt.statusCodes]).to.deep.equal([]);
    expect(DEFAULT_RETRY_POLICY.retryOn).to.include.members([
      'connect-failure',
      'refused-stream',
      'unavailable',
      'cancelled',
    ]);
  });
  it('retries: nil → default; attempts 0 → disabled; attempts unset with retryOn → disabled (ConvertPolicy)', () => {
    expect(convertRetries(undefined)).to.equal(undefined);
    expect(convertRetries({ attempts: 0 })!.attempts).to.equal(0);
    expect(convertRetries({ retryOn: '5xx' })!.attempts).to.equal(0);
  });
  it('attempts without retryOn start from the default: no 503 either (ConvertPolicy)', () => {
    const p = convertRetries({ attempts: 4 })!;
    expect(p.retriableStatusCodes).to.deep.equal([]);
    expect(p.retryOn).to.deep.equal([
      'connect-failure',
      'refused-stream',
      'unavailable',
      'cancelled',
      'retriable-status-codes',
    ]);
    expect(isRetriable(compileRetry(p, 0), resp(503))).to.equal(false);
    expect(isRetriable(compileRetry(p, 0), { kind: 'connect-failure' })).to.equal(true);
  });
  const TOKENS: [string, number[], string[]][] = [
    ['503', [503], ['retriable-status-codes']],
    ['gateway-error, 503 ,,', [503], ['gateway-error', 'retriable-status-codes']],
    ['retriable-status-codes,409', [409], ['retriable-status-codes']],
    ['5xx', [], ['5xx']],
    ['999', [], ['999']], // not an HTTP status: kept as a token, as Istio's parseRetryOn does
    ['42', [], ['42']],
  ];
  for (const [retryOn, codes, tokens] of TOKENS)
    it(`retryOn "${retryOn}" → codes ${JSON.stringify(codes)}, tokens ${tokens.join(',')}`, () => {
      const p = convertRetries({ attempts: 1, retryOn })!;
      expect(p.retriableStatusCodes).to.deep.equal(codes);
      expect(p.retryOn).to.deep.equal(tokens);
    });
  it('numeric tokens become status codes and add retriable-status-codes', () => {
    const p = convertRetries({ attempts: 2, retryOn: '5xx,409' })!;
    expect(p.retriableStatusCodes).to.deep.equal([409]);
    expect(p.retryOn).to.deep.equal(['5xx', 'retriable-status-codes']);
  });
  it('perTryTimeout defaults to the route timeout', () => {
    expect(compileRetry(convertRetries({ attempts: 2 }), 3000).perTryTimeoutMs).to.equal(3000);
    expect(
      compileRetry(convertRetries({ attempts: 2, perTryTimeout: '500ms' }), 3000).perTryTimeoutMs,
    ).to.equal(500);
  });
  it('backoff is jittered in [0, base*(2^n-1)] capped at 10×base', () => {
    expect(backoffMs(dflt, 1, () => 0.999)).to.be.at.most(25);
    expect(backoffMs(dflt, 2, () => 0.999)).to.be.at.most(75);
    expect(backoffMs(dflt, 10, () => 0.999)).to.be.at.most(250);
    expect(backoffMs(dflt, 3, () => 0)).to.equal(0);
  });
});
