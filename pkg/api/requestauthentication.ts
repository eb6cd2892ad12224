/**
 * RequestAuthentication (security.istio.io): which JWTs a workload accepts (issuers, JWKS,
 * where to find the token). Requests with an invalid token are rejected; requests without one
 * are let through unless an AuthorizationPolicy requires a request principal.
 */
import type { JSONSchema, KindDefinition } from './kind.js';
import type { Duration, KubeObject, PolicyTargetReference, WorkloadSelector } from './common.js';
import { istioStatusSchema } from './common.js';
import { arr, bool, duration, obj, policyTargetRef, str, strArr, workloadSelector } from './schema.js';

export interface JWTHeader {
  name: string;
  prefix?: string;
}

export interface ClaimToHeader {
  header: string;
  claim: string;
}

export interface JWTRule {
  issuer: string;
  audiences?: string[];
  jwksUri?: string;
  /** jwksUri under its protobuf name (Istio's CRD lists both spellings). */
  jwks_uri?: string;
  jwks?: string;
  fromHeaders?: JWTHeader[];
  fromParams?: string[];
  fromCookies?: string[];
  outputPayloadToHeader?: string;
  forwardOriginalToken?: boolean;
  outputClaimToHeaders?: ClaimToHeader[];
  /** Claims whose string value is a space-separated list (besides `scope` and `permission`). */
  spaceDelimitedClaims?: string[];
  timeout?: Duration;
}

export interface RequestAuthenticationSpec {
  selector?: WorkloadSelector;
  targetRef?: PolicyTargetReference;
  targetRefs?: PolicyTargetReference[];
  jwtRules?: JWTRule[];
}

export type RequestAuthentication = KubeObject<RequestAuthenticationSpec>;

export const requestAuthenticationSpecSchema = (): JSONSchema =>
  obj(
    {
      selector: workloadSelector(),
      targetRef: policyTargetRef(),
      targetRefs: arr(policyTargetRef()),
      jwtRules: arr(
        obj(
          {
            issuer: str(),
            audiences: strArr(),
            jwksUri: str(),
            jwks_uri: str(),
            jwks: str(),
            fromHeaders: arr(obj({ name: str(), prefix: str() }, { required: ['name'] })),
            fromParams: strArr(),
            fromCookies: strArr(),
            outputPayloadToHeader: str(),
            forwardOriginalToken: bool(),
            outputClaimToHeaders: arr(
              obj({ header: str(), claim: str() }, { required: ['header', 'claim'] }),
            ),
            spaceDelimitedClaims: strArr(),
            timeout: duration(),
          },
          { required: ['issuer'] },
        ),
        { maxItems: 4096 },
      ),
    },
    { oneOf: [['selector', 'targetRef', 'targetRefs']] },
  );

export const requestAuthenticationKind: KindDefinition = {
  group: 'security.istio.io',
  kind: 'RequestAuthentication',
  plural: 'requestauthentications',
  singular: 'requestauthentication',
  listKind: 'RequestAuthenticationList',
  shortNames: ['ra'],
  categories: ['istio-io', 'security-istio-io'],
  scope: 'Namespaced',
  versions: ['v1', 'v1beta1'],
  storageVersion: 'v1',
  printerColumns: [],
  specSchema: requestAuthenticationSpecSchema(),
  statusSchema: istioStatusSchema(),
};
