/*
 * trimMemory() for the lean runtime (ADR 0075). Two things a Node process cannot do by itself:
 *
 *  1. Unmap the clean pages of read-only private file mappings (the node binary's code and
 *     read-only data, shared libraries): madvise(MADV_DONTNEED). Start-up touches far more of
 *     the 94 MB node binary than a running proxy uses (bootstrap, snapshot, the dynamic symbol
 *     tables searched once by the dynamic linker); those pages then stay in the resident set for
 *     the process's life. For a private mapping that was never written, every resident page is
 *     identical to the file, so dropping it loses nothing: the next access maps it again from
 *     the page cache (a minor fault). A mapping with any anonymous (copy-on-write) page, a
 *     locked one, or a writable one is left alone.
 *  2. malloc_trim(0): give glibc's free heap pages back (start-up garbage: V8 compiler zones,
 *     configuration parsing).
 *
 * Returns { filePagesKb, mappings, heapTrimmed } with what was released.
 */
#define NAPI_VERSION 8
#define _GNU_SOURCE
#include <ctype.h>
#include <malloc.h>
#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "memory.h"

typedef struct mapping {
  unsigned long start, end;
  int candidate;
  long rss, anon, locked;
} mapping;

/* "start-end perms offset dev inode [path]": 1 and the fields when `line` is a mapping header. */
static int parse_header(const char *line, mapping *m) {
  unsigned long s, e;
  char perms[5];
  int path_at = -1;
  if (!isxdigit((unsigned char)line[0])) return 0;
  if (sscanf(line, "%lx-%lx %4s %*s %*s %*s %n", &s, &e, perms, &path_at) < 3 || strlen(perms) != 4) return 0;
  memset(m, 0, sizeof *m);
  m->start = s;
  m->end = e;
  /* A private, never-writable mapping of a file by path (not [heap], [stack], anonymous). */
  m->candidate = path_at > 0 && line[path_at] == '/' && perms[0] == 'r' && perms[1] == '-' && perms[3] == 'p';
  return 1;
}

/* Releases `m` when it qualifies; returns the kB released. */
static long release(const mapping *m) {
  if (!m->candidate || m->rss == 0 || m->anon != 0 || m->locked != 0) return 0;
  return madvise((void *)m->start, m->end - m->start, MADV_DONTNEED) == 0 ? m->rss : 0;
}

napi_value wr_js_trim_memory(napi_env env, napi_callback_info info) {
  FILE *f = fopen("/proc/self/smaps", "re");
  if (!f) {
    napi_throw_error(env, "ERR_RELAY_MEMORY", "cannot read /proc/self/smaps");
    return NULL;
  }
  char *line = NULL;
  size_t cap = 0;
  mapping m = {0};
  int have = 0;
  double released_kb = 0;
  uint32_t mappings = 0;
  while (getline(&line, &cap, f) > 0) {
    mapping next;
    if (parse_header(line, &next)) {
      /* VmFlags ends an entry on current kernels; a new header ends it on any. */
      if (have) {
        long kb = release(&m);
        released_kb += (double)kb;
        mappings += kb > 0;
      }
      m = next;
      have = 1;
      continue;
    }
    if (!have || !m.candidate) continue;
    long v;
    if (sscanf(line, "Rss: %ld kB", &v) == 1) m.rss = v;
    else if (sscanf(line, "Anonymous: %ld kB", &v) == 1) m.anon = v;
    else if (sscanf(line, "Locked: %ld kB", &v) == 1) m.locked = v;
  }
  if (have) {
    long kb = release(&m);
    released_kb += (double)kb;
    mappings += kb > 0;
  }
  free(line);
  fclose(f);
  int trimmed = malloc_trim(0);
  napi_value out, kb_v, n_v, t_v;
  if (napi_create_object(env, &out) != napi_ok || napi_create_double(env, released_kb, &kb_v) != napi_ok ||
      napi_create_uint32(env, mappings, &n_v) != napi_ok || napi_get_boolean(env, trimmed != 0, &t_v) != napi_ok ||
      napi_set_named_property(env, out, "filePagesKb", kb_v) != napi_ok || napi_set_named_property(env, out, "mappings", n_v) != napi_ok ||
      napi_set_named_property(env, out, "heapTrimmed", t_v) != napi_ok) {
    napi_throw_error(env, "ERR_RELAY_NAPI", "Node-API call failed");
    return NULL;
  }
  return out;
}
