/*
 * execve(2) for the agent's lean-runtime restart (ADR 0073): Node 20 has no process.execve, and
 * the V8 heap flags and glibc's arena limit that keep a sidecar small can only be set when a
 * process starts. Replacing the process image keeps the PID, the open descriptors without
 * FD_CLOEXEC (stdio, which Node marks close-on-exec and this clears; inherited listeners) and the parent/child relationship, which a spawned
 * child would not. Returns only on failure, as an Error with code ERR_RELAY_EXEC and errno.
 */
#define NAPI_VERSION 8
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exec.h"

#define MAX_STRINGS 4096

/* Copies a JS array of strings into a NULL-terminated, heap-allocated vector; NULL on error. */
static char **string_vector(napi_env env, napi_value arr) {
  bool is_array = false;
  uint32_t n = 0;
  if (napi_is_array(env, arr, &is_array) != napi_ok || !is_array) return NULL;
  if (napi_get_array_length(env, arr, &n) != napi_ok || n > MAX_STRINGS) return NULL;
  char **out = calloc((size_t)n + 1, sizeof *out);
  if (!out) return NULL;
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    size_t len = 0;
    napi_valuetype t;
    if (napi_get_element(env, arr, i, &v) != napi_ok || napi_typeof(env, v, &t) != napi_ok || t != napi_string ||
        napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) goto fail;
    out[i] = malloc(len + 1);
    if (!out[i] || napi_get_value_string_utf8(env, v, out[i], len + 1, &len) != napi_ok || strlen(out[i]) != len) goto fail;
  }
  return out;
fail:
  for (uint32_t i = 0; i < n; i++) free(out[i]);
  free(out);
  return NULL;
}

static void free_vector(char **v) {
  if (!v) return;
  for (char **p = v; *p; p++) free(*p);
  free(v);
}

static napi_value throw_code(napi_env env, const char *code, const char *message, int err) {
  napi_value msg, c, error, errno_v;
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &c);
  napi_create_error(env, c, msg, &error);
  if (err) {
    napi_create_int32(env, err, &errno_v);
    napi_set_named_property(env, error, "errno", errno_v);
  }
  napi_throw(env, error);
  return NULL;
}

/* execve(path: string, argv: string[], env: string[]): never returns on success. */
napi_value wr_js_execve(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 3)
    return throw_code(env, "ERR_RELAY_ARG", "execve(path, argv, env) takes three arguments", 0);
  char **path = NULL, **args = NULL, **envp = NULL;
  napi_value one;
  napi_create_array_with_length(env, 1, &one);
  napi_set_element(env, one, 0, argv[0]);
  path = string_vector(env, one);
  args = string_vector(env, argv[1]);
  envp = string_vector(env, argv[2]);
  if (!path || !args || !envp || !args[0]) {
    free_vector(path);
    free_vector(args);
    free_vector(envp);
    return throw_code(env, "ERR_RELAY_ARG", "execve: path, argv and env must be strings without NUL, argv non-empty", 0);
  }
  /* Node marks stdio close-on-exec at startup; the new image must keep them. */
  for (int fd = 0; fd <= 2; fd++) {
    int flags = fcntl(fd, F_GETFD);
    if (flags >= 0 && (flags & FD_CLOEXEC)) fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
  }
  execve(path[0], args, envp);
  int err = errno;
  free_vector(path);
  free_vector(args);
  free_vector(envp);
  char message[256];
  snprintf(message, sizeof message, "execve failed: %s", strerror(err));
  return throw_code(env, "ERR_RELAY_EXEC", message, err);
}
