/** `<code> <details.path>` of what `fn` throws, or `ok`. */
export function configCodeOf(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (e) {
    const err = e as { code?: string; details?: { path?: string } };
    return `${String(err.code)} ${String(err.details?.path)}`;
  }
}
