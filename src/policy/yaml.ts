/**
 * Bounded YAML loading for untrusted policy files: size, document count, alias expansion and
 * nesting are all capped, duplicate keys and unknown tags are errors, and nothing can hang.
 */
import { Composer, Parser, type Document } from 'yaml';
import type { PolicyIssue } from './errors.js';

export interface YamlLimits {
  /** Max bytes of one file (default 4 MiB). */
  readonly maxBytes?: number;
  /** Max documents in one file (default 10,000). */
  readonly maxDocuments?: number;
  /** Max alias dereferences per document (default 100); a billion-laughs file fails fast. */
  readonly maxAliasCount?: number;
  /** Max nesting depth of a document (default 64). */
  readonly maxDepth?: number;
  /** Max nodes (values) in one document after alias expansion (default 200,000). */
  readonly maxNodes?: number;
}

export interface LoadedDocument {
  readonly index: number;
  readonly value: unknown;
}

const DEFAULTS = { maxBytes: 4 * 1024 * 1024, maxDocuments: 10_000, maxAliasCount: 100, maxDepth: 64, maxNodes: 200_000 };

/** Counts nodes and depth; returns a reason when a limit is crossed. */
function checkShape(value: unknown, maxDepth: number, maxNodes: number): string | undefined {
  let nodes = 0;
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (++nodes > maxNodes) return `more than ${maxNodes} values in one document`;
    if (depth > maxDepth) return `nesting deeper than ${maxDepth}`;
    if (Array.isArray(v)) for (const item of v) stack.push([item, depth + 1]);
    else if (v !== null && typeof v === 'object') {
      if (v instanceof Map || v instanceof Set) return 'non-string mapping keys are not allowed';
      for (const item of Object.values(v)) stack.push([item, depth + 1]);
    }
  }
  return undefined;
}

/**
 * Nesting depth of the concrete syntax tree, measured without recursion. The YAML composer
 * recurses per level, and a stack overflow inside V8's regexp compiler is a fatal error rather
 * than an exception, so depth is bounded on the CST (built by the iterative parser) first.
 */
function cstDepth(token: unknown, maxDepth: number): number {
  let max = 0;
  const stack: Array<[unknown, number]> = [[token, 0]];
  while (stack.length > 0) {
    const [t, depth] = stack.pop()!;
    if (t === null || typeof t !== 'object') continue;
    if (depth > max) max = depth;
    if (max > maxDepth) return max;
    const node = t as { type?: string; value?: unknown; key?: unknown; items?: Array<{ key?: unknown; value?: unknown }> };
    const nested = node.type === 'block-map' || node.type === 'block-seq' || node.type === 'flow-collection' ? depth + 1 : depth;
    if (node.value !== undefined) stack.push([node.value, depth]);
    if (node.key !== undefined) stack.push([node.key, depth]);
    if (Array.isArray(node.items)) {
      for (const item of node.items) {
        if (item.key !== undefined && item.key !== null) stack.push([item.key, nested]);
        if (item.value !== undefined && item.value !== null) stack.push([item.value, nested]);
      }
    }
  }
  return max;
}

/**
 * Loads every document of a YAML (or JSON) text. Problems come back as issues with code
 * `ERR_POLICY_YAML`; documents that loaded are returned either way (callers that want
 * all-or-nothing check `issues`).
 */
export function loadYamlDocuments(text: string, file?: string, limits: YamlLimits = {}): { documents: LoadedDocument[]; issues: PolicyIssue[] } {
  const lim = { ...DEFAULTS, ...limits };
  const issues: PolicyIssue[] = [];
  const documents: LoadedDocument[] = [];
  const issue = (message: string, document?: number): void => {
    issues.push({ code: 'ERR_POLICY_YAML', message, ...(file === undefined ? {} : { file }), ...(document === undefined ? {} : { document }) });
  };
  if (typeof text !== 'string') {
    issue('input is not text');
    return { documents, issues };
  }
  if (Buffer.byteLength(text, 'utf8') > lim.maxBytes) {
    issue(`file larger than ${lim.maxBytes} bytes`);
    return { documents, issues };
  }
  let separators = 0;
  for (let at = text.indexOf('---'); at >= 0; at = text.indexOf('---', at + 3)) {
    if ((at === 0 || text[at - 1] === '\n') && ++separators > lim.maxDocuments) {
      issue(`more than ${lim.maxDocuments} documents`);
      return { documents, issues };
    }
  }
  let docs: Document.Parsed[];
  try {
    const tokens = Array.from(new Parser().parse(text));
    if (tokens.length > lim.maxDocuments) {
      issue(`more than ${lim.maxDocuments} documents`);
      return { documents, issues };
    }
    for (const token of tokens) {
      if (cstDepth(token, lim.maxDepth) > lim.maxDepth) {
        issue(`nesting deeper than ${lim.maxDepth}`);
        return { documents, issues };
      }
    }
    const composer = new Composer({ uniqueKeys: true, prettyErrors: false, strict: true, version: '1.2', merge: false, stringKeys: true });
    docs = Array.from(composer.compose(tokens));
  } catch (error) {
    issue(`cannot parse YAML: ${error instanceof RangeError ? 'input nested too deeply' : (error as Error).message}`);
    return { documents, issues };
  }
  docs.forEach((doc, index) => {
    if (doc.errors.length > 0) {
      issue(doc.errors.map((e) => e.message.split('\n')[0]).slice(0, 3).join('; '), index);
      return;
    }
    const unknownTag = doc.warnings.find((w) => w.code === 'TAG_RESOLVE_FAILED');
    if (unknownTag) {
      issue(`unsupported YAML tag: ${unknownTag.message.split('\n')[0]}`, index);
      return;
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: lim.maxAliasCount });
    } catch (error) {
      issue(error instanceof RangeError ? 'input nested too deeply' : (error as Error).message.split('\n')[0]!, index);
      return;
    }
    if (value === null || value === undefined) return; // empty document (e.g. trailing ---)
    const shape = checkShape(value, lim.maxDepth, lim.maxNodes);
    if (shape) {
      issue(shape, index);
      return;
    }
    documents.push({ index, value });
  });
  return { documents, issues };
}
