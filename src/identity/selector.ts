/**
 * Attribute selectors: which workloads a policy protects or admits, decided on identity attributes
 * rather than labels alone (`vuln.critical == 0`, `build.verified == true`, `build.repo in (...)`).
 *
 * A selector is a list of requirements that must all hold (AND). The parsed form is plain data
 * ({@link Selector}) so it can travel over the wire; {@link compileSelector} turns it into a
 * predicate that does no parsing and no allocation per call.
 */
import type { AttributeValue } from './attributes.js';
import { isAttributeKey } from './attributes.js';
import { IdentityError } from './errors.js';

/** Set operators follow Kubernetes label selectors; numeric comparisons are Ward's addition. */
export type SelectorOperator = 'Equals' | 'NotEquals' | 'In' | 'NotIn' | 'Exists' | 'DoesNotExist' | 'Gt' | 'Gte' | 'Lt' | 'Lte';

export const SELECTOR_OPERATORS: readonly SelectorOperator[] = ['Equals', 'NotEquals', 'In', 'NotIn', 'Exists', 'DoesNotExist', 'Gt', 'Gte', 'Lt', 'Lte'];

/** One requirement. Values are kept as strings (canonical form); comparisons parse them as numbers. */
export interface SelectorRequirement {
  readonly key: string;
  readonly operator: SelectorOperator;
  readonly values: readonly string[];
}

/** A parsed selector: all requirements must hold. An empty selector selects everything. */
export interface Selector {
  readonly requirements: readonly SelectorRequirement[];
}

/** Attribute values as seen by selectors: key -> value. */
export type AttributeView = Readonly<Record<string, AttributeValue | undefined>>;

export type SelectorPredicate = (attrs: AttributeView) => boolean;

const MAX_REQUIREMENTS = 64;
const MAX_VALUES = 1024;
const MAX_VALUE_LENGTH = 1024;

function fail(path: string, message: string): never {
  throw new IdentityError('ERR_SELECTOR_INVALID', `${path}: ${message}`, { details: { path } });
}

function canonicalScalar(value: unknown, path: string): string {
  if (typeof value === 'string') {
    if (value.length > MAX_VALUE_LENGTH) fail(path, `value longer than ${MAX_VALUE_LENGTH}`);
    return value;
  }
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) fail(path, 'number must be finite');
    return String(value);
  }
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  return fail(path, `expected a string, number or boolean, got ${value === null ? 'null' : typeof value}`);
}

function checkKey(key: unknown, path: string): string {
  if (typeof key !== 'string' || !isAttributeKey(key)) fail(path, `invalid attribute key ${JSON.stringify(key)?.slice(0, 80)} (expected a namespaced key such as k8s.namespace)`);
  return key;
}

function makeRequirement(key: string, operator: SelectorOperator, values: readonly string[], path: string): SelectorRequirement {
  switch (operator) {
    case 'Exists':
    case 'DoesNotExist':
      if (values.length !== 0) fail(path, `${operator} takes no values`);
      break;
    case 'Equals':
    case 'NotEquals':
      if (values.length !== 1) fail(path, `${operator} takes exactly one value`);
      break;
    case 'In':
    case 'NotIn':
      if (values.length === 0) fail(path, `${operator} needs at least one value`);
      if (values.length > MAX_VALUES) fail(path, `more than ${MAX_VALUES} values`);
      break;
    case 'Gt':
    case 'Gte':
    case 'Lt':
    case 'Lte':
      if (values.length !== 1) fail(path, `${operator} takes exactly one value`);
      if (!Number.isFinite(Number(values[0])) || values[0]!.trim() === '') fail(path, `${operator} needs a number, got ${JSON.stringify(values[0])}`);
      break;
  }
  return Object.freeze({ key, operator, values: Object.freeze([...values]) });
}

const SHORTHAND_OPS: ReadonlyArray<readonly [string, SelectorOperator]> = [
  ['==', 'Equals'], ['!=', 'NotEquals'], ['>=', 'Gte'], ['<=', 'Lte'], ['>', 'Gt'], ['<', 'Lt'], ['=', 'Equals'],
];

/**
 * Parses the string shorthand of one requirement: `key`, `!key`, `key == v`, `key != v`,
 * `key > n` (also `>=`, `<`, `<=`), `key in (a, b)`, `key notin (a, b)`.
 *
 * @example
 * parseRequirementShorthand('vuln.critical == 0'); // { key: 'vuln.critical', operator: 'Equals', values: ['0'] }
 */
export function parseRequirementShorthand(text: string, path = 'selector'): SelectorRequirement {
  if (text.length > 4096) fail(path, 'expression too long');
  const s = text.trim();
  const setMatch = /^(\S+)\s+(in|notin)\s*\((.*)\)$/i.exec(s);
  if (setMatch) {
    const values = setMatch[3]!.split(',').map((v) => v.trim()).filter((v) => v !== '');
    return makeRequirement(checkKey(setMatch[1], path), setMatch[2]!.toLowerCase() === 'in' ? 'In' : 'NotIn', values, path);
  }
  if (s.startsWith('!')) return makeRequirement(checkKey(s.slice(1).trim(), path), 'DoesNotExist', [], path);
  for (const [token, op] of SHORTHAND_OPS) {
    const at = s.indexOf(token);
    if (at > 0) {
      const key = s.slice(0, at).trim();
      const value = s.slice(at + token.length).trim();
      if (value === '') fail(path, `missing value after ${token}`);
      return makeRequirement(checkKey(key, path), op, [value], path);
    }
  }
  if (/^\S+$/.test(s)) return makeRequirement(checkKey(s, path), 'Exists', [], path);
  return fail(path, `cannot parse expression ${JSON.stringify(s.slice(0, 80))}`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Parses a selector from its YAML/JSON shape:
 * `{ matchAttributes: {key: value}, matchExpressions: [{key, operator, values} | "shorthand"] }`.
 * Throws `ERR_SELECTOR_INVALID` with `details.path` on the first problem.
 *
 * @example
 * parseSelector({ matchAttributes: { 'build.verified': true }, matchExpressions: ['vuln.critical == 0'] });
 */
export function parseSelector(raw: unknown, path = 'selector'): Selector {
  if (raw === null || raw === undefined) return EMPTY_SELECTOR;
  if (!isRecord(raw)) fail(path, 'expected a mapping with matchAttributes and/or matchExpressions');
  const requirements: SelectorRequirement[] = [];
  for (const field of Object.keys(raw)) {
    if (field !== 'matchAttributes' && field !== 'matchExpressions') fail(`${path}.${field}`, 'unknown field');
  }
  const attrs = raw['matchAttributes'];
  if (attrs !== undefined && attrs !== null) {
    if (!isRecord(attrs)) fail(`${path}.matchAttributes`, 'expected a mapping of attribute key to value');
    for (const [key, value] of Object.entries(attrs)) {
      const p = `${path}.matchAttributes.${key}`;
      requirements.push(makeRequirement(checkKey(key, p), 'Equals', [canonicalScalar(value, p)], p));
    }
  }
  const exprs = raw['matchExpressions'];
  if (exprs !== undefined && exprs !== null) {
    if (!Array.isArray(exprs)) fail(`${path}.matchExpressions`, 'expected a list');
    exprs.forEach((expr: unknown, i) => {
      const p = `${path}.matchExpressions[${i}]`;
      if (typeof expr === 'string') {
        requirements.push(parseRequirementShorthand(expr, p));
        return;
      }
      if (!isRecord(expr)) fail(p, 'expected {key, operator, values} or a string expression');
      for (const field of Object.keys(expr)) {
        if (field !== 'key' && field !== 'operator' && field !== 'values' && field !== 'value') fail(`${p}.${field}`, 'unknown field');
      }
      const key = checkKey(expr['key'], `${p}.key`);
      const operator = expr['operator'];
      if (typeof operator !== 'string' || !(SELECTOR_OPERATORS as readonly string[]).includes(operator)) {
        fail(`${p}.operator`, `must be one of ${SELECTOR_OPERATORS.join(', ')}`);
      }
      let values: string[] = [];
      if (expr['value'] !== undefined && expr['values'] !== undefined) fail(p, 'give value or values, not both');
      if (expr['value'] !== undefined) values = [canonicalScalar(expr['value'], `${p}.value`)];
      else if (expr['values'] !== undefined && expr['values'] !== null) {
        const vs = expr['values'];
        if (!Array.isArray(vs)) fail(`${p}.values`, 'expected a list');
        if (vs.length > MAX_VALUES) fail(`${p}.values`, `more than ${MAX_VALUES} values`);
        values = vs.map((v: unknown, j) => canonicalScalar(v, `${p}.values[${j}]`));
      }
      requirements.push(makeRequirement(key, operator as SelectorOperator, values, p));
    });
  }
  if (requirements.length > MAX_REQUIREMENTS) fail(path, `more than ${MAX_REQUIREMENTS} requirements`);
  return Object.freeze({ requirements: Object.freeze(requirements) });
}

/** Selects every workload. */
export const EMPTY_SELECTOR: Selector = Object.freeze({ requirements: Object.freeze([]) });

/** Builds a selector from already-valid requirements (used by importers). */
export function selectorOf(requirements: readonly SelectorRequirement[]): Selector {
  return Object.freeze({ requirements: Object.freeze(requirements.map((r, i) => makeRequirement(checkKey(r.key, `requirements[${i}]`), r.operator, r.values, `requirements[${i}]`))) });
}

type Check = (value: AttributeValue | undefined) => boolean;

function valueIn(strings: ReadonlySet<string>, numbers: ReadonlySet<number>): Check {
  return (value) => {
    if (value === undefined) return false;
    if (typeof value === 'string') return strings.has(value);
    if (typeof value === 'number') return numbers.has(value);
    if (typeof value === 'boolean') return strings.has(value ? 'true' : 'false');
    for (let i = 0; i < value.length; i++) if (strings.has(value[i]!)) return true;
    return false;
  };
}

function compileRequirement(req: SelectorRequirement): Check {
  const strings = new Set(req.values);
  const numbers = new Set<number>();
  for (const v of req.values) {
    const n = Number(v);
    if (v.trim() !== '' && Number.isFinite(n)) numbers.add(n);
  }
  const bound = req.values.length === 1 ? Number(req.values[0]) : NaN;
  const num = (value: AttributeValue | undefined): number => {
    if (typeof value === 'number') return value;
    if (typeof value === 'string' && value.trim() !== '') return Number(value);
    return NaN;
  };
  switch (req.operator) {
    case 'Equals':
    case 'In':
      return valueIn(strings, numbers);
    case 'NotEquals':
    case 'NotIn': {
      const inSet = valueIn(strings, numbers);
      return (value) => !inSet(value);
    }
    case 'Exists':
      return (value) => value !== undefined;
    case 'DoesNotExist':
      return (value) => value === undefined;
    // NaN compares false both ways: a missing or non-numeric attribute never satisfies a comparison.
    case 'Gt':
      return (value) => num(value) > bound;
    case 'Gte':
      return (value) => num(value) >= bound;
    case 'Lt':
      return (value) => num(value) < bound;
    case 'Lte':
      return (value) => num(value) <= bound;
  }
}

const ALWAYS: SelectorPredicate = () => true;

/**
 * Compiles a selector into a predicate over an attribute view. The predicate does not allocate.
 *
 * @example
 * const ok = compileSelector(parseSelector({ matchExpressions: ['vuln.critical == 0'] }));
 * ok({ 'vuln.critical': 0 }); // true
 */
export function compileSelector(selector: Selector): SelectorPredicate {
  const reqs = selector.requirements;
  if (reqs.length === 0) return ALWAYS;
  const keys = reqs.map((r) => r.key);
  const checks = reqs.map(compileRequirement);
  if (reqs.length === 1) {
    const k = keys[0]!;
    const c = checks[0]!;
    return (attrs) => c(attrs[k]);
  }
  const n = reqs.length;
  return (attrs) => {
    for (let i = 0; i < n; i++) if (!checks[i]!(attrs[keys[i]!])) return false;
    return true;
  };
}

/**
 * The equality requirement a selector index can bucket on (the first `Equals`/`In`), if any.
 * Every workload the selector selects has `key` set to one of `values`.
 */
export function selectorAnchor(selector: Selector): { key: string; values: readonly string[] } | undefined {
  for (const r of selector.requirements) {
    if (r.operator === 'Equals' || r.operator === 'In') return { key: r.key, values: r.values };
  }
  return undefined;
}

/** Renders a selector in the shorthand form, for explanations. */
export function formatSelector(selector: Selector): string {
  if (selector.requirements.length === 0) return '(all)';
  return selector.requirements.map((r) => {
    switch (r.operator) {
      case 'Exists': return r.key;
      case 'DoesNotExist': return `!${r.key}`;
      case 'Equals': return `${r.key} == ${r.values[0]}`;
      case 'NotEquals': return `${r.key} != ${r.values[0]}`;
      case 'In': return `${r.key} in (${r.values.join(', ')})`;
      case 'NotIn': return `${r.key} notin (${r.values.join(', ')})`;
      case 'Gt': return `${r.key} > ${r.values[0]}`;
      case 'Gte': return `${r.key} >= ${r.values[0]}`;
      case 'Lt': return `${r.key} < ${r.values[0]}`;
      case 'Lte': return `${r.key} <= ${r.values[0]}`;
    }
  }).join(', ');
}
