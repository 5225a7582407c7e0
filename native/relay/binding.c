/*
 * Node-API binding of the native L4 relay (relay.h). Events cross from the relay thread to the
 * JavaScript thread through one thread-safe function; commands go the other way through the
 * relay's queue. JavaScript wrapper: src/agent/proxy/native/addon.ts.
 */
#define NAPI_VERSION 8
#include <errno.h>
#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "relay.h"
#include "exec.h"
#include "memory.h"

typedef struct box {
  wr_engine *e;
  napi_threadsafe_function tsfn;
  int refd;
} box;

typedef struct ev_copy {
  int kind;
  double conn;
  uint32_t listener;
  unsigned char *der;
  size_t der_len;
  double bytes_in, bytes_out;
  const char *reason; /* static strings only */
  int relayed;
  char peer_ip[64]; /* "" when none */
  int handoff_fd;   /* WR_EV_HANDOFF: owned by this copy until JavaScript takes it; else -1 */
  char alpn[16];
} ev_copy;

#define CHECK(call)                                                  \
  do {                                                               \
    if ((call) != napi_ok) {                                         \
      napi_throw_error(env, "ERR_RELAY_NAPI", "Node-API call failed"); \
      return NULL;                                                   \
    }                                                                \
  } while (0)

/* A handoff descriptor that cannot reach JavaScript is closed: the relay then sees EOF and
 * closes the connection (fail closed, no leak). */
static void drop_copy(ev_copy *c) {
  if (c->handoff_fd >= 0) close(c->handoff_fd);
  free(c->der);
  free(c);
}

static void on_event(void *user, const wr_event *ev) {
  box *b = user;
  ev_copy *c = calloc(1, sizeof *c);
  if (!c) {
    if (ev->kind == WR_EV_HANDOFF) close(ev->handoff_fd);
    return;
  }
  c->kind = ev->kind;
  c->conn = (double)ev->conn;
  c->listener = ev->listener;
  c->bytes_in = (double)ev->bytes_in;
  c->bytes_out = (double)ev->bytes_out;
  c->reason = ev->reason;
  c->relayed = ev->relayed;
  if (ev->peer_ip) snprintf(c->peer_ip, sizeof c->peer_ip, "%s", ev->peer_ip);
  c->handoff_fd = ev->kind == WR_EV_HANDOFF ? ev->handoff_fd : -1;
  if (ev->kind == WR_EV_HANDOFF && ev->alpn) snprintf(c->alpn, sizeof c->alpn, "%s", ev->alpn);
  if (ev->der && ev->der_len > 0) {
    c->der = malloc(ev->der_len);
    if (!c->der) {
      drop_copy(c);
      return;
    }
    memcpy(c->der, ev->der, ev->der_len);
    c->der_len = ev->der_len;
  }
  if (napi_call_threadsafe_function(b->tsfn, c, napi_tsfn_nonblocking) != napi_ok) drop_copy(c);
}

static void call_js(napi_env env, napi_value cb, void *context, void *data) {
  (void)context;
  ev_copy *c = data;
  if (env == NULL || cb == NULL) {
    drop_copy(c);
    return;
  }
  napi_value argv[11], undef;
  napi_get_undefined(env, &undef);
  napi_create_int32(env, c->kind, &argv[0]);
  napi_create_double(env, c->conn, &argv[1]);
  napi_create_uint32(env, c->listener, &argv[2]);
  if (c->der) {
    /* A copy in a plain ArrayBuffer, not an external buffer: V8 frees a plain one when its
     * Buffer dies young (scavenge), while an external buffer's finalizer waits for a full GC,
     * and under connection churn tens of MB of chains piled up waiting. */
    void *out;
    if (napi_create_buffer_copy(env, c->der_len, c->der, &out, &argv[3]) != napi_ok) argv[3] = undef;
    free(c->der);
  } else {
    argv[3] = undef;
  }
  napi_create_double(env, c->bytes_in, &argv[4]);
  napi_create_double(env, c->bytes_out, &argv[5]);
  if (c->reason) napi_create_string_utf8(env, c->reason, NAPI_AUTO_LENGTH, &argv[6]);
  else argv[6] = undef;
  napi_get_boolean(env, c->relayed != 0, &argv[7]);
  if (c->peer_ip[0]) napi_create_string_utf8(env, c->peer_ip, NAPI_AUTO_LENGTH, &argv[8]);
  else argv[8] = undef;
  /* From here JavaScript owns the descriptor (it must close it, also when it does not want it). */
  if (c->handoff_fd >= 0) napi_create_int32(env, c->handoff_fd, &argv[9]);
  else argv[9] = undef;
  napi_create_string_utf8(env, c->alpn, NAPI_AUTO_LENGTH, &argv[10]);
  free(c);
  napi_call_function(env, undef, cb, 11, argv, NULL);
}

static void destroy_box(box *b, int abort) {
  if (b->e) {
    wr_destroy(b->e);
    b->e = NULL;
    napi_release_threadsafe_function(b->tsfn, abort ? napi_tsfn_abort : napi_tsfn_release);
  }
}

static void finalize_box(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  box *b = data;
  destroy_box(b, 1);
  free(b);
}

static box *get_box(napi_env env, napi_value v) {
  box *b = NULL;
  if (napi_get_value_external(env, v, (void **)&b) != napi_ok || b == NULL) {
    napi_throw_type_error(env, "ERR_RELAY_ARG", "not a relay engine");
    return NULL;
  }
  if (b->e == NULL) {
    napi_throw_error(env, "ERR_RELAY_CLOSED", "relay engine destroyed");
    return NULL;
  }
  return b;
}

static uint32_t prop_u32(napi_env env, napi_value obj, const char *name, uint32_t dflt) {
  napi_value v;
  uint32_t out = dflt;
  bool has = false;
  if (napi_has_named_property(env, obj, name, &has) == napi_ok && has && napi_get_named_property(env, obj, name, &v) == napi_ok) napi_get_value_uint32(env, v, &out);
  return out;
}

/* create(onEvent, limits) → engine */
static napi_value js_create(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], name, result;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) {
    napi_throw_type_error(env, "ERR_RELAY_ARG", "create(onEvent, limits)");
    return NULL;
  }
  box *b = calloc(1, sizeof *b);
  if (!b) {
    napi_throw_error(env, "ERR_RELAY_NOMEM", "out of memory");
    return NULL;
  }
  CHECK(napi_create_string_utf8(env, "ward-relay", NAPI_AUTO_LENGTH, &name));
  if (napi_create_threadsafe_function(env, argv[0], NULL, name, 0, 1, NULL, NULL, NULL, call_js, &b->tsfn) != napi_ok) {
    free(b);
    napi_throw_error(env, "ERR_RELAY_NAPI", "could not create the event channel");
    return NULL;
  }
  napi_unref_threadsafe_function(env, b->tsfn);
  wr_limits lim = {
      .handshake_timeout_ms = prop_u32(env, argv[1], "handshakeTimeoutMs", 10000),
      .connect_timeout_ms = prop_u32(env, argv[1], "connectTimeoutMs", 5000),
      .idle_timeout_ms = prop_u32(env, argv[1], "idleTimeoutMs", 300000),
      .decision_timeout_ms = prop_u32(env, argv[1], "decisionTimeoutMs", 10000),
      .max_connections = prop_u32(env, argv[1], "maxConnections", 10000),
  };
  b->e = wr_create(on_event, b, &lim);
  if (!b->e) {
    napi_release_threadsafe_function(b->tsfn, napi_tsfn_abort);
    free(b);
    napi_throw_error(env, "ERR_RELAY_START", "relay thread could not start");
    return NULL;
  }
  CHECK(napi_create_external(env, b, finalize_box, NULL, &result));
  return result;
}

static char *get_string(napi_env env, napi_value v) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return NULL;
  char *s = malloc(len + 1);
  if (!s) return NULL;
  napi_get_value_string_utf8(env, v, s, len + 1, &len);
  return s;
}

/* setTls(engine, slot, server, certPem, keyPem, caPem) */
static napi_value js_set_tls(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  box *b = get_box(env, argv[0]);
  if (!b) return NULL;
  uint32_t slot;
  bool server;
  CHECK(napi_get_value_uint32(env, argv[1], &slot));
  CHECK(napi_get_value_bool(env, argv[2], &server));
  char *cert = get_string(env, argv[3]), *key = get_string(env, argv[4]), *ca = get_string(env, argv[5]);
  char err[320] = "";
  int r = (cert && key && ca) ? wr_set_tls(b->e, slot, server, cert, key, ca, err, sizeof err) : -1;
  if (key) explicit_bzero(key, strlen(key)); /* memset before free may be optimised away */
  free(cert);
  free(key);
  free(ca);
  if (r != 0) napi_throw_error(env, "ERR_RELAY_TLS", err[0] ? err : "invalid TLS material");
  return NULL;
}

/* listen(engine, id, kind, host, port, slot, targetHost, targetPort) → bound port */
static napi_value js_listen(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8], result;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  box *b = get_box(env, argv[0]);
  if (!b) return NULL;
  uint32_t id, kind, slot;
  int32_t port, tport;
  CHECK(napi_get_value_uint32(env, argv[1], &id));
  CHECK(napi_get_value_uint32(env, argv[2], &kind));
  CHECK(napi_get_value_int32(env, argv[4], &port));
  CHECK(napi_get_value_uint32(env, argv[5], &slot));
  CHECK(napi_get_value_int32(env, argv[7], &tport));
  char *host = get_string(env, argv[3]), *thost = get_string(env, argv[6]);
  int r = (host && thost) ? wr_listen(b->e, id, (int)kind, host, port, slot, thost, tport) : -ENOMEM;
  free(host);
  free(thost);
  if (r < 0) {
    const char *code = r == -EADDRINUSE ? "EADDRINUSE" : r == -EACCES ? "EACCES" : r == -EINVAL ? "EINVAL" : "ELISTEN";
    napi_throw_error(env, code, strerror(-r));
    return NULL;
  }
  CHECK(napi_create_int32(env, r, &result));
  return result;
}

typedef void (*conn_fn)(wr_engine *, uint64_t);

/* The first n arguments (missing ones are undefined) and the live engine in argv[0]; NULL with
 * an exception pending when argv[0] is not one. */
static box *engine_args(napi_env env, napi_callback_info info, napi_value *argv, size_t n) {
  size_t argc = n;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
    napi_throw_error(env, "ERR_RELAY_NAPI", "Node-API call failed");
    return NULL;
  }
  return get_box(env, argv[0]);
}

/* A connection id from an event: an integer in [1, 2^53) (ids are generation << 24 | slot, with
 * 29 generation bits). Anything else (NaN, negative, fractional, too big) would be undefined
 * behaviour in the cast; it throws instead. */
static int get_conn_id(napi_env env, napi_value v, uint64_t *out) {
  double id;
  if (napi_get_value_double(env, v, &id) != napi_ok || !(id >= 1 && id < 9007199254740992.0) || id != (double)(uint64_t)id) {
    napi_throw_type_error(env, "ERR_RELAY_ARG", "connection id must be an id from a relay event");
    return -1;
  }
  *out = (uint64_t)id;
  return 0;
}

static napi_value conn_call(napi_env env, napi_callback_info info, conn_fn fn) {
  napi_value argv[2];
  box *b = engine_args(env, info, argv, 2);
  if (!b) return NULL;
  uint64_t id;
  if (get_conn_id(env, argv[1], &id) != 0) return NULL;
  fn(b->e, id);
  return NULL;
}

/* allow(engine, conn, stage[, target]): stage = the kind of the event answered (Accepted or
 * Peer); target = an IP literal to connect to instead of the listener's target. */
static napi_value js_allow(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  size_t argc = 4;
  uint64_t id;
  uint32_t stage = 0;
  char target[64] = "";
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  box *b = engine_args(env, info, argv, 3);
  if (!b || get_conn_id(env, argv[1], &id) != 0) return NULL;
  if (napi_get_value_uint32(env, argv[2], &stage) != napi_ok || (stage != WR_EV_ACCEPTED && stage != WR_EV_PEER)) {
    napi_throw_type_error(env, "ERR_RELAY_ARG", "allow(engine, conn, stage): stage must be the kind of the event answered");
    return NULL;
  }
  if (argc >= 4) {
    napi_valuetype t;
    size_t len = 0;
    unsigned char addr[sizeof(struct in6_addr)];
    if (napi_typeof(env, argv[3], &t) != napi_ok) return NULL;
    if (t != napi_undefined) {
      if (t != napi_string || napi_get_value_string_utf8(env, argv[3], target, sizeof target, &len) != napi_ok || len >= sizeof target - 1 ||
          (inet_pton(AF_INET, target, addr) != 1 && inet_pton(AF_INET6, target, addr) != 1)) {
        napi_throw_type_error(env, "ERR_RELAY_ARG", "allow(engine, conn, stage, target): target must be an IP literal");
        return NULL;
      }
    }
  }
  wr_allow(b->e, id, (int)stage, target);
  return NULL;
}

static napi_value js_deny(napi_env env, napi_callback_info info) { return conn_call(env, info, wr_deny); }
static napi_value js_close(napi_env env, napi_callback_info info) { return conn_call(env, info, wr_close); }

static napi_value js_unlisten(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  box *b = engine_args(env, info, argv, 2);
  if (!b) return NULL;
  uint32_t id;
  CHECK(napi_get_value_uint32(env, argv[1], &id));
  wr_unlisten(b->e, id);
  return NULL;
}

/* ref(engine, bool): keep the event loop alive while listeners are open. */
static napi_value js_ref(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  box *b = engine_args(env, info, argv, 2);
  if (!b) return NULL;
  bool on;
  CHECK(napi_get_value_bool(env, argv[1], &on));
  if (on && !b->refd) napi_ref_threadsafe_function(env, b->tsfn);
  if (!on && b->refd) napi_unref_threadsafe_function(env, b->tsfn);
  b->refd = on;
  return NULL;
}

static napi_value js_destroy(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  box *b = NULL;
  if (napi_get_value_external(env, argv[0], (void **)&b) == napi_ok && b) {
    if (b->refd) napi_unref_threadsafe_function(env, b->tsfn);
    b->refd = 0;
    destroy_box(b, 1);
  }
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"create", NULL, js_create, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setTls", NULL, js_set_tls, NULL, NULL, NULL, napi_enumerable, NULL},
      {"listen", NULL, js_listen, NULL, NULL, NULL, napi_enumerable, NULL},
      {"unlisten", NULL, js_unlisten, NULL, NULL, NULL, napi_enumerable, NULL},
      {"allow", NULL, js_allow, NULL, NULL, NULL, napi_enumerable, NULL},
      {"deny", NULL, js_deny, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"ref", NULL, js_ref, NULL, NULL, NULL, napi_enumerable, NULL},
      {"destroy", NULL, js_destroy, NULL, NULL, NULL, napi_enumerable, NULL},
      {"execve", NULL, wr_js_execve, NULL, NULL, NULL, napi_enumerable, NULL},
      {"trimMemory", NULL, wr_js_trim_memory, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
