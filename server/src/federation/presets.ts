/**
 * What each kind of partner defaults to, and which claims identify a workload of it: a
 * binding must put at least one condition on one of them, so that a shared issuer (every
 * Buildkite customer signs with https://agent.buildkite.com) is never trusted wholesale.
 * `requiredPins`: a partner of this preset must pin one of these claims in its
 * `requiredClaims` (the tenant: Buildkite's organization, GitLab's namespace or project).
 */
export const PRESET_NAMES = ['github', 'gitlab', 'buildkite', 'circleci', 'kubernetes', 'spiffe', 'sentryagent', 'custom'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

export interface Preset {
  /** The issuer when it is the same for every customer (else the partner names it). */
  readonly issuer?: string;
  readonly algorithms: readonly string[];
  readonly maxTokenAgeSeconds: number;
  /** Tokens minted per request (single use), or reused by every step of a job or cached by design. */
  readonly singleUseJti: boolean;
  /** Claims that identify a workload: a binding conditions at least one of them. */
  readonly identifyingClaims: readonly string[];
  /** The partner itself must pin one of these (its tenant on a shared issuer); empty: none required. */
  readonly requiredPins: readonly string[];
  readonly summary: string;
}

const DEFAULT_ALGORITHMS = ['RS256', 'ES256'] as const;

export const PRESETS: Readonly<Record<PresetName, Preset>> = {
  github: {
    issuer: 'https://token.actions.githubusercontent.com',
    algorithms: ['RS256'],
    maxTokenAgeSeconds: 600,
    singleUseJti: true,
    identifyingClaims: ['repository', 'repository_id', 'repository_owner_id', 'sub', 'job_workflow_ref'],
    requiredPins: ['repository_owner_id', 'repository_owner', 'repository_id', 'repository'],
    summary: 'GitHub Actions: pin the owner or repository (by id where you can); the built-in /oidc/token exchange stays as it is.',
  },
  gitlab: {
    algorithms: ['RS256'],
    maxTokenAgeSeconds: 3600,
    singleUseJti: false,
    identifyingClaims: ['project_id', 'project_path', 'namespace_id', 'namespace_path', 'sub'],
    requiredPins: ['namespace_id', 'namespace_path', 'project_id', 'project_path'],
    summary:
      'GitLab CI (iss: the instance URL): pin namespace_id or project_id. A merge-request pipeline from a fork runs with the fork\'s project_*: condition on ref_protected or pipeline_source where that matters.',
  },
  buildkite: {
    issuer: 'https://agent.buildkite.com',
    algorithms: ['RS256'],
    maxTokenAgeSeconds: 600,
    singleUseJti: true,
    identifyingClaims: ['organization_slug', 'pipeline_slug', 'sub'],
    requiredPins: ['organization_slug'],
    summary: 'Buildkite: one issuer for every Buildkite customer, so the partner must pin organization_slug.',
  },
  circleci: {
    algorithms: ['RS256'],
    maxTokenAgeSeconds: 3600,
    singleUseJti: false,
    identifyingClaims: ['oidc.circleci.com/project-id', 'sub', 'aud'],
    requiredPins: [],
    summary: 'CircleCI (iss: https://oidc.circleci.com/org/<org id>, one per organization; aud: the organization id).',
  },
  kubernetes: {
    algorithms: DEFAULT_ALGORITHMS,
    maxTokenAgeSeconds: 3600,
    singleUseJti: false,
    // A service account's name alone is not one: any namespace may make one of that name.
    identifyingClaims: ['sub', '/kubernetes.io/namespace'],
    requiredPins: [],
    summary: 'Kubernetes service-account tokens (iss: the cluster\'s; sub: system:serviceaccount:<namespace>:<name>); inline keys for a private cluster.',
  },
  spiffe: {
    algorithms: DEFAULT_ALGORITHMS,
    maxTokenAgeSeconds: 3600,
    singleUseJti: false,
    identifyingClaims: ['sub'],
    requiredPins: [],
    summary: 'SPIFFE JWT-SVIDs: sub is the SPIFFE ID; we require iss, which the SVID profile leaves optional.',
  },
  sentryagent: {
    algorithms: ['RS256', 'ES256', 'EdDSA'],
    maxTokenAgeSeconds: 3600,
    singleUseJti: false,
    identifyingClaims: ['sub', 'org_id', 'client_id'],
    requiredPins: ['org_id'],
    summary: 'Another SentryAgent IdP: pin its org_id claim.',
  },
  custom: {
    algorithms: DEFAULT_ALGORITHMS,
    maxTokenAgeSeconds: 3600,
    singleUseJti: false,
    identifyingClaims: ['sub'],
    requiredPins: [],
    summary: 'Any OIDC issuer: name everything yourself.',
  },
};

/** Algorithms a partner may use: asymmetric only (never none, never HS*: RFC 8725 §3.1). */
export const ALLOWED_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'EdDSA'] as const;
