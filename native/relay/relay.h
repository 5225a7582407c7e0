/*
 * Ward's native L4 data plane: a TLS-terminating / TLS-originating byte relay on its own thread
 * (epoll, non-blocking sockets, OpenSSL). It never decides anything: every new connection stops
 * at a decision point and waits for the owner (the Node agent) to say allow or deny. See
 * docs/adr/0049-native-l4-data-plane.md.
 *
 * Threading: wr_* functions other than wr_create/wr_destroy may be called from any thread; they
 * enqueue a command that the relay thread runs. Events are delivered on the relay thread through
 * the callback given to wr_create; the callback must copy what it needs and return quickly.
 */
#ifndef WARD_RELAY_H
#define WARD_RELAY_H

#include <stddef.h>
#include <stdint.h>

typedef struct wr_engine wr_engine;

enum wr_listener_kind {
  /* Accepts mTLS from peers; on allow, connects to the app in plaintext. */
  WR_INBOUND_TLS = 1,
  /* Accepts plaintext from the local app; on allow, connects to the upstream and originates mTLS. */
  WR_OUTBOUND_PLAIN = 2,
  /* Accepts mTLS from peers (ALPN h2 / http/1.1); on allow, relays the plaintext into one end of
   * a socketpair and hands the other end to the owner (WR_EV_HANDOFF): TLS on this thread, the
   * HTTP layer in the owner's. */
  WR_INBOUND_TLS_HANDOFF = 3,
};

enum wr_event_kind {
  /* Outbound: a local connection was accepted; allow → connect + handshake upstream. */
  WR_EV_ACCEPTED = 1,
  /* TLS handshake done, chain verified by OpenSSL; der = the verified chain, leaf first, each
   * certificate as a 4-byte big-endian length then its DER; allow → relay. */
  WR_EV_PEER = 2,
  /* The connection is gone (after allow or deny or failure); bytes are what was relayed. */
  WR_EV_CLOSED = 3,
  /* WR_INBOUND_TLS_HANDOFF, after the Peer allow: handoff_fd is the owner's end of the plaintext
   * socketpair (the owner must close it), alpn the negotiated protocol ("" if none). */
  WR_EV_HANDOFF = 4,
};

typedef struct wr_event {
  int kind;
  uint64_t conn;        /* connection id (0 for listener events) */
  uint32_t listener;    /* listener id */
  const unsigned char *der; /* WR_EV_PEER: verified chain (see WR_EV_PEER) */
  size_t der_len;
  uint64_t bytes_in;    /* WR_EV_CLOSED: bytes read from the accepted side */
  uint64_t bytes_out;   /* WR_EV_CLOSED: bytes written to the accepted side */
  const char *reason;   /* WR_EV_CLOSED: why ("eof", "idle", "handshake", "verify", "denied", "connect", "decision", "error", "closed"); static storage */
  int relayed;          /* WR_EV_CLOSED: 1 if the connection reached the relay stage */
  const char *peer_ip;  /* WR_EV_PEER of an inbound connection: the caller's IP (text), or NULL */
  int handoff_fd;       /* WR_EV_HANDOFF only */
  const char *alpn;     /* WR_EV_HANDOFF only */
} wr_event;

typedef void (*wr_event_cb)(void *user, const wr_event *ev);

typedef struct wr_limits {
  uint32_t handshake_timeout_ms;
  uint32_t connect_timeout_ms;
  uint32_t idle_timeout_ms;
  uint32_t decision_timeout_ms;
  uint32_t max_connections;
} wr_limits;

/* Creates the engine and starts its thread. NULL on failure (errno set). */
wr_engine *wr_create(wr_event_cb cb, void *user, const wr_limits *limits);
/* Stops the thread, closes every socket, frees everything. No events after it returns. */
void wr_destroy(wr_engine *e);

/*
 * Installs (or replaces, for later handshakes) the TLS material of slot `slot`: PEM chain, PEM
 * key, PEM CA bundle. Returns 0, or -1 with a message in err (OpenSSL's reason), nothing changed.
 * Runs synchronously on the caller's thread (building the context), then swaps it in on the
 * relay thread.
 */
int wr_set_tls(wr_engine *e, uint32_t slot, int server, const char *cert_pem, const char *key_pem, const char *ca_pem, char *err, size_t err_len);

/*
 * Opens a listener (bind + listen on the caller's thread so errors are immediate); returns the
 * bound port (>0) or -errno. kind WR_INBOUND_TLS: TLS slot `tls_slot` (server), target = app.
 * kind WR_OUTBOUND_PLAIN: TLS slot `tls_slot` (client), target = upstream.
 */
int wr_listen(wr_engine *e, uint32_t listener, int kind, const char *host, int port, uint32_t tls_slot, const char *target_host, int target_port);
/* Closes a listener (live connections stay). */
void wr_unlisten(wr_engine *e, uint32_t listener);

/*
 * Moves a connection waiting at a decision point on; deny closes it. `stage` is the kind of the
 * event being answered (WR_EV_ACCEPTED or WR_EV_PEER): an allow is applied only at that decision
 * point and ignored anywhere else (the decision timeout then closes the connection). `target`
 * (NULL or "" for none) is an IP literal the connection connects to instead of its listener's
 * target: the owner resolves host names, the relay thread never blocks on DNS. Used where the
 * connection is about to connect: an outbound egress allow, an inbound TCP peer allow.
 */
void wr_allow(wr_engine *e, uint64_t conn, int stage, const char *target);
void wr_deny(wr_engine *e, uint64_t conn);
/* Closes a connection in any state (revocation, policy change). */
void wr_close(wr_engine *e, uint64_t conn);

#endif
