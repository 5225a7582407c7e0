/**
 * Route templates for HTTP events (`url.path_template`), so events for `/orders/8123` and
 * `/orders/9001` aggregate as `/orders/{id}`. The agent does not know the application's routes;
 * it replaces the path segments that look like identifiers, and keeps every other segment:
 *
 * - all digits (`8123`) → `{id}`
 * - a UUID (`3f2a…-…`) → `{uuid}`
 * - hex of 16 or more characters, or a token of 20 or more letters/digits/`-_` with at least one
 *   digit (`c2a1f9…`, `AbC9x…`) → `{token}`
 *
 * The query and fragment are not part of the template. Pure and total: any string in, a string out.
 *
 * @example
 * pathTemplate('/v1/orders/8123/items/3f2a6c1e-1b2d-4c3e-9f00-aa11bb22cc33'); // '/v1/orders/{id}/items/{uuid}'
 */
const DIGITS = /^\d+$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const HEX = /^[0-9a-f]{16,}$/i;
const TOKEN = /^(?=[A-Za-z0-9_-]*\d)[A-Za-z0-9_-]{20,}$/;

/** Longest path templated, and longest template returned (events bound their paths to the same). */
export const MAX_TEMPLATE_INPUT = 2048;

export function pathTemplate(path: string): string {
  let p = path.length > MAX_TEMPLATE_INPUT ? path.slice(0, MAX_TEMPLATE_INPUT) : path;
  const cut = p.search(/[?#]/);
  if (cut >= 0) p = p.slice(0, cut);
  const segments = p.split('/');
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i] as string;
    if (s.length === 0) continue;
    if (DIGITS.test(s)) segments[i] = '{id}';
    else if (UUID.test(s)) segments[i] = '{uuid}';
    else if (HEX.test(s) || TOKEN.test(s)) segments[i] = '{token}';
  }
  const out = segments.join('/');
  // `{id}` is longer than a one-digit segment: keep the result within the input bound.
  return out.length > MAX_TEMPLATE_INPUT ? out.slice(0, MAX_TEMPLATE_INPUT) : out;
}
