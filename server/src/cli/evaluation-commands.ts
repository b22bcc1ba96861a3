/**
 * federation evaluate <partnerId> and policies evaluate: why a token would be granted or
 * refused, through the evaluation service (nothing is spent, issued or audited). A refusal
 * explained is a successful answer (exit 0). The token itself is never printed: only what
 * the service says of it and of its claims.
 */
import type { ConditionResult } from '../federation/conditions.js';
import type { EvaluationInput, PartnerEvaluation, TokenCheck, TrustPolicyEvaluation } from '../federation/evaluation-service.js';
import { requireUuid } from '../http/validation.js';
import { formatFields, formatTable } from './output.js';
import { inOrganization, readOptionFile, textOption, usageError, type DatabaseCommand, type Invocation } from './command.js';

const SYNOPSIS = '--token <jwt> | --token-file <path> | --claims-file <path> [--agent <agentId>]';
const OPTIONS = {
  token: { type: 'string' },
  'token-file': { type: 'string' },
  'claims-file': { type: 'string' },
  agent: { type: 'string' },
} as const;
const OPTION_HELP = {
  token: 'the token to verify and evaluate (nothing of it is spent); on the command line it is visible to other users: prefer --token-file',
  'token-file': 'a file holding the token (surrounding whitespace ignored)',
  'claims-file': 'a JSON file holding the claims as an object: a dry run, no token verified',
};
/** The longest claim value shown in a table; --json has the whole of it. */
const MAX_SHOWN_CHARS = 80;

/** `--token`, `--token-file` or `--claims-file` (exactly one), and `--agent`, as the service's input. */
function evaluationInput({ options }: Invocation): EvaluationInput {
  const given = (['token', 'token-file', 'claims-file'] as const).filter((name) => options[name] !== undefined);
  if (given.length !== 1) {
    throw usageError(`${given.length === 0 ? 'give' : 'give only'} one of --token, --token-file (a token to verify) or --claims-file (a dry run)`);
  }
  const agent = textOption(options.agent);
  const agentId = agent === undefined ? undefined : requireUuid(agent, '--agent');
  const tokenFile = textOption(options['token-file']);
  const claimsFile = textOption(options['claims-file']);
  if (claimsFile !== undefined) return { claims: readClaims(claimsFile), agentId };
  const token = (tokenFile === undefined ? textOption(options.token) : readOptionFile(tokenFile, 'token-file'))?.trim();
  if (!token) throw usageError(tokenFile === undefined ? '--token is empty' : `--token-file ${tokenFile} is empty`);
  return { token, agentId };
}

function readClaims(file: string): Record<string, unknown> {
  let claims: unknown;
  try {
    claims = JSON.parse(readOptionFile(file, 'claims-file'));
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
  }
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) {
    throw usageError(`--claims-file ${file} is not a JSON object of claims (e.g. {"sub": "…"})`);
  }
  return claims as Record<string, unknown>;
}

/** Text from a token (a claim, a refusal naming one), safe on a terminal: control characters escaped, long values cut. */
function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  const escaped = text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (character) => JSON.stringify(character).slice(1, -1));
  return escaped.length > MAX_SHOWN_CHARS ? `${escaped.slice(0, MAX_SHOWN_CHARS - 1)}…` : escaped;
}

/** A claim's value as the token carries it: JSON, so that "7" and 7 differ (only strings meet a condition). */
const describeActual = (actual: unknown) => (actual === undefined ? '(absent)' : printable(JSON.stringify(actual)));
const describeExpected = ({ condition }: ConditionResult) => (Array.isArray(condition.value) ? condition.value.join(',') : (condition.value as string));
const yesNo = (value: boolean) => (value ? 'yes' : 'no');

function describeToken(token: TokenCheck): string {
  if (token.isVerified === null) return 'not checked (a dry run on claims)';
  return token.isVerified ? 'verified' : `refused: ${printable(token.reason ?? 'invalid')}`;
}

function conditionsTable(results: readonly ConditionResult[]): string {
  return formatTable(
    ['CLAIM', 'OP', 'EXPECTED', 'ACTUAL', 'MET'],
    results.map((result) => [result.condition.claim, result.condition.op, printable(describeExpected(result)), describeActual(result.actual), yesNo(result.isMet)]),
    'none',
  );
}

/** One row per binding, and one more per failed condition after the first: each with claim, op, expected and actual. */
function bindingsTable(bindings: PartnerEvaluation['bindings']): string {
  const rows = bindings.flatMap(({ bindingId, agentId, isMatch, conditions }) => {
    const failed = conditions.filter((result) => !result.isMet);
    const conditionCells = (result?: ConditionResult) =>
      result ? [result.condition.claim, result.condition.op, printable(describeExpected(result)), describeActual(result.actual)] : ['-', '', '', ''];
    return [[bindingId, agentId, yesNo(isMatch), ...conditionCells(failed[0])], ...failed.slice(1).map((result) => ['', '', '', ...conditionCells(result)])];
  });
  return formatTable(['BINDING ID', 'AGENT', 'MATCHED', 'FAILED CLAIM', 'OP', 'EXPECTED', 'ACTUAL'], rows, 'no bindings to evaluate');
}

function describePartnerEvaluation(evaluation: PartnerEvaluation): string {
  return [
    formatFields([
      ['partner', evaluation.partnerId],
      ['token', describeToken(evaluation.token)],
      ['required claims', evaluation.requiredClaims.every((result) => result.isMet) ? 'met' : 'not met'],
      ['would grant', yesNo(evaluation.wouldGrant)],
    ]),
    '',
    'required claims:',
    conditionsTable(evaluation.requiredClaims),
    '',
    'bindings:',
    bindingsTable(evaluation.bindings),
  ].join('\n');
}

function describeTrustPolicyEvaluation(evaluation: TrustPolicyEvaluation): string {
  const rows = evaluation.policies.flatMap(({ policyId, agentId, isMatch, mismatches }) => {
    const [first, ...rest] = mismatches.map(({ constraint, reason }) => [constraint, printable(reason)]);
    return [[policyId, agentId ?? '(registration)', yesNo(isMatch), ...(first ?? ['-', ''])], ...rest.map((cells) => ['', '', '', ...cells])];
  });
  return [
    formatFields([
      ['token', describeToken(evaluation.token)],
      ['would match', yesNo(evaluation.policies.some((policy) => policy.isMatch))],
    ]),
    '',
    formatTable(['POLICY ID', 'AGENT', 'MATCHED', 'FAILED CONSTRAINT', 'REASON'], rows, 'no trust policies for the repository'),
  ].join('\n');
}

export const evaluatePartnerCommand: DatabaseCommand = inOrganization({
  name: 'federation evaluate',
  summary: "explain why a partner's token would be granted or refused: the partner's checks, and each binding's conditions (nothing is spent)",
  readsOnly: true,
  arguments: ['partnerId'],
  synopsis: SYNOPSIS,
  options: OPTIONS,
  optionHelp: { ...OPTION_HELP, agent: "only this agent's bindings" },
  pathOptions: ['token-file', 'claims-file'],
  run: async ({ evaluations, caller, output }, invocation) => {
    const partnerId = requireUuid(invocation.args[0], 'partnerId');
    const evaluation = await evaluations.evaluatePartner(caller, partnerId, evaluationInput(invocation));
    output.result(evaluation, () => describePartnerEvaluation(evaluation));
  },
});

export const evaluatePoliciesCommand: DatabaseCommand = inOrganization({
  name: 'policies evaluate',
  summary: 'explain why a GitHub ID token would be admitted or refused by the trust policies of its repository (nothing is spent)',
  readsOnly: true,
  synopsis: SYNOPSIS,
  options: OPTIONS,
  optionHelp: { ...OPTION_HELP, agent: "this agent's policies, and the registration policies (else: the registration policies alone)" },
  pathOptions: ['token-file', 'claims-file'],
  run: async ({ evaluations, caller, output }, invocation) => {
    const evaluation = await evaluations.evaluateTrustPolicies(caller, evaluationInput(invocation));
    output.result(evaluation, () => describeTrustPolicyEvaluation(evaluation));
  },
});
