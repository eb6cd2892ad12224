import { expect } from 'chai';
import { backendErrors, budgetOver, rateLimitCount } from '../../e2e/support/globallimits.js';

// What the e2e (c7) step reads from a sidecar's /stats/prometheus (weft_proxy_ratelimit_* as
// proxy/ratelimit/limiter.ts and global.ts write them) and the budget it checks against.
const SCRAPE = `# TYPE weft_proxy_ratelimit_requests_total counter
weft_proxy_ratelimit_requests_total{limit="memquota demo/global requestcount.instance.demo",override="overrides[0]",result="allowed"} 37
weft_proxy_ratelimit_requests_total{limit="memquota demo/global requestcount.instance.demo",override="overrides[0]",result="limited"} 96
weft_proxy_ratelimit_requests_total{limit="RateLimit demo/budget-global",override="default",result="allowed"} 5
weft_proxy_ratelimit_requests_total{limit="RateLimit demo/budget-global",override="reviews",result="allowed"} 2
weft_proxy_ratelimit_backend_errors_total 3
`;

describe('e2e support: global limit counts', () => {
  it('sums one result per limit, across overrides', () => {
    expect(rateLimitCount(SCRAPE, 'allowed', 'memquota demo/global requestcount.instance.demo')).to.equal(37);
    expect(rateLimitCount(SCRAPE, 'limited', 'memquota demo/global requestcount.instance.demo')).to.equal(96);
    expect(rateLimitCount(SCRAPE, 'allowed', 'RateLimit demo/budget-global')).to.equal(7);
    expect(rateLimitCount(SCRAPE, 'allowed')).to.equal(44);
    expect(rateLimitCount(SCRAPE, 'limited', 'RateLimit demo/other')).to.equal(0);
    expect(rateLimitCount('', 'allowed')).to.equal(0);
  });

  it('reads the backend errors (0 when the sidecar never counted one)', () => {
    expect(backendErrors(SCRAPE)).to.equal(3);
    expect(backendErrors('weft_proxy_ratelimit_requests_total{result="allowed"} 1\n')).to.equal(0);
  });

  it('the budget of a per-minute bucket over a burst: the full bucket plus what refilled', () => {
    expect(budgetOver(100, 0)).to.equal(100);
    expect(budgetOver(100, 6)).to.equal(110);
    expect(budgetOver(60, 4.5)).to.equal(64.5);
  });
});
