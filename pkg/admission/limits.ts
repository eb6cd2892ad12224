/**
 * Limits on an AdmissionReview body, checked on the raw bytes before anything parses or walks
 * it: the webhook is reachable by anything that can reach its Service, not only the API server.
 */

/** The API server's own request limit: a larger body never came from it. */
export const MAX_BODY_BYTES = 3 * 1024 * 1024;

/**
 * kube-apiserver decodes JSON at most 10,000 levels deep (Go encoding/json's maxNestingDepth,
 * kept by sigs.k8s.io/json and k8s.io/apimachinery/pkg/util/json), so no object it stores or
 * sends nests deeper; the AdmissionReview puts the object two levels down (review → request →
 * object). Real objects nest ~15 levels (pkg/validation refuses more than 100 with a denial);
 * this limit only keeps bodies no API server could have sent away from the parser.
 */
export const API_SERVER_MAX_DEPTH = 10_000;
export const MAX_BODY_DEPTH = API_SERVER_MAX_DEPTH + 2;

const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Whether a JSON text nests objects and arrays deeper than `limit`: one pass over the bytes
 * counting brackets outside strings, no parse and no recursion. Malformed JSON is the parser's
 * to refuse; this only answers about depth (UTF-8 continuation bytes are >= 0x80, so they never
 * look like brackets or quotes).
 */
export function nestsDeeperThan(json: Uint8Array, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < json.length; i++) {
    const b = json[i];
    if (inString) {
      if (b === BACKSLASH) i++;
      else if (b === QUOTE) inString = false;
    } else if (b === QUOTE) inString = true;
    else if (b === OPEN_BRACE || b === OPEN_BRACKET) {
      if (++depth > limit) return true;
    } else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) depth--;
  }
  return false;
}
