/*
 * Ward's native L4 data plane. See relay.h for the contract and docs/adr/0049 for why.
 *
 * One thread, one epoll set (level-triggered), non-blocking sockets, OpenSSL doing TLS directly
 * on the sockets (read-ahead on). Per connection: two 16 KiB buffers (plaintext waiting to be
 * encrypted, decrypted bytes waiting to be written), so a slow reader on either side stops the
 * other side's reads (backpressure) instead of growing memory.
 *
 * Readiness hints: a read that returns less than asked clears the "readable" hint; level-
 * triggered epoll reports the socket again if more data arrives, so clearing is always safe
 * and saves the EAGAIN read per event that edge-triggered loops pay.
 */
#define _GNU_SOURCE
#include "relay.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define BUF_SIZE 16384
#define MAX_SLOTS 16
#define MAX_LISTENERS 256
#define SLOT_BITS 24
#define SLOT_MASK ((1u << SLOT_BITS) - 1)

enum ep_type { EP_WAKE = 1, EP_LISTENER = 2, EP_CONN = 3 };

enum conn_state {
  ST_WAIT_EGRESS = 1, /* outbound: accepted, waiting for the egress decision */
  ST_CONNECTING,      /* connecting the up side */
  ST_HANDSHAKE,       /* TLS handshake on the TLS side */
  ST_WAIT_PEER,       /* handshake done, waiting for the peer decision */
  ST_RELAY,
};

struct conn;
struct listener;

typedef struct ep {
  int type;
  int fd;
  uint32_t interest;
  struct conn *c;
  struct listener *l;
} ep;

typedef struct listener {
  ep ep;
  uint32_t id;
  int kind;
  uint32_t tls_slot;
  char target_host[256];
  int target_port;
  int open;
  uint64_t paused_until; /* ms; accept paused after EMFILE/ENFILE (0 = not paused) */
  struct listener *next_dead;
} listener;

typedef struct conn {
  uint64_t id;
  uint32_t slot;
  int state;
  int kind;
  uint32_t listener;
  ep down; /* the accepted socket */
  ep up;   /* the socket we opened */
  ep *plain;
  ep *tls;
  SSL *ssl;
  char target_host[256];
  int target_port;
  char peer_ip[INET6_ADDRSTRLEN]; /* inbound: the caller's address; "" if unknown */
  uint32_t tls_slot;
  unsigned char *p2t; /* plaintext read, to be encrypted */
  size_t p2t_len, p2t_off;
  unsigned char *t2p; /* decrypted, to be written in plaintext */
  size_t t2p_len, t2p_off;
  unsigned plain_readable : 1, tls_readable : 1, plain_eof : 1, tls_eof : 1, plain_shut : 1, tls_shut : 1;
  unsigned plain_wblocked : 1, tls_wblocked : 1, ssl_w_wants_read : 1, ssl_r_wants_write : 1;
  unsigned relayed : 1, dead : 1;
  uint64_t bytes_in, bytes_out;
  uint64_t deadline;      /* ms, for the states that wait; 0 = none */
  uint64_t last_activity; /* ms */
  struct conn *next_dead;
} conn;

typedef struct cmd {
  int type;
  uint64_t conn;
  uint32_t listener;
  uint32_t slot;
  uint32_t stage; /* CMD_ALLOW: the event kind answered */
  char target[64]; /* CMD_ALLOW: "" or the IP literal to connect to instead of the listener's target */
  SSL_CTX *ctx;
  listener *l;
  struct cmd *next;
} cmd;

enum cmd_type { CMD_STOP = 1, CMD_SET_TLS, CMD_LISTEN, CMD_UNLISTEN, CMD_ALLOW, CMD_DENY, CMD_CLOSE };

struct wr_engine {
  int epfd;
  int wakefd;
  ep wake_ep;
  pthread_t thread;
  pthread_mutex_t lock;
  cmd *head, *tail;
  wr_event_cb cb;
  void *user;
  wr_limits limits;
  SSL_CTX *tls[MAX_SLOTS];
  listener *listeners[MAX_LISTENERS];
  conn **conns;      /* slot table */
  uint32_t *gens;    /* generation per slot */
  uint32_t cap;
  uint32_t *free_slots;
  uint32_t nfree;
  uint32_t active;
  uint64_t now;
  conn *dead;
  listener *dead_listeners;
  int stopping;
};

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---------- commands ---------- */

static void push_cmd(wr_engine *e, cmd *c) {
  c->next = NULL;
  pthread_mutex_lock(&e->lock);
  if (e->tail) e->tail->next = c;
  else e->head = c;
  e->tail = c;
  pthread_mutex_unlock(&e->lock);
  uint64_t one = 1;
  ssize_t w = write(e->wakefd, &one, sizeof one);
  (void)w;
}

static void simple_cmd(wr_engine *e, int type, uint64_t conn_id, uint32_t listener_id) {
  cmd *c = calloc(1, sizeof *c);
  if (!c) return;
  c->type = type;
  c->conn = conn_id;
  c->listener = listener_id;
  push_cmd(e, c);
}

/* ---------- connections ---------- */

static void set_interest(wr_engine *e, ep *p, uint32_t want) {
  if (p->fd < 0 || p->interest == want) return;
  struct epoll_event ev = {.events = want, .data.ptr = p};
  if (p->interest == 0 && want != 0) epoll_ctl(e->epfd, EPOLL_CTL_ADD, p->fd, &ev);
  else if (want == 0) epoll_ctl(e->epfd, EPOLL_CTL_DEL, p->fd, NULL);
  else epoll_ctl(e->epfd, EPOLL_CTL_MOD, p->fd, &ev);
  p->interest = want;
}

static conn *find_conn(wr_engine *e, uint64_t id) {
  uint32_t slot = (uint32_t)(id & SLOT_MASK);
  if (slot >= e->cap) return NULL;
  conn *c = e->conns[slot];
  if (!c || c->id != id || c->dead) return NULL;
  return c;
}

static conn *new_conn(wr_engine *e) {
  if (e->nfree == 0) {
    uint32_t ncap = e->cap ? e->cap * 2 : 256;
    if (ncap > SLOT_MASK) return NULL;
    conn **nc = realloc(e->conns, ncap * sizeof *nc);
    if (!nc) return NULL;
    e->conns = nc;
    uint32_t *ng = realloc(e->gens, ncap * sizeof *ng);
    if (!ng) return NULL;
    e->gens = ng;
    uint32_t *nf = realloc(e->free_slots, ncap * sizeof *nf);
    if (!nf) return NULL;
    e->free_slots = nf;
    for (uint32_t i = e->cap; i < ncap; i++) {
      e->conns[i] = NULL;
      e->gens[i] = 0;
    }
    for (uint32_t i = ncap; i > e->cap; i--) e->free_slots[e->nfree++] = i - 1;
    e->cap = ncap;
  }
  conn *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  uint32_t slot = e->free_slots[--e->nfree];
  e->gens[slot] = (e->gens[slot] + 1) & ((1u << 29) - 1);
  if (e->gens[slot] == 0) e->gens[slot] = 1;
  c->slot = slot;
  c->id = ((uint64_t)e->gens[slot] << SLOT_BITS) | slot;
  c->down.type = c->up.type = EP_CONN;
  c->down.c = c->up.c = c;
  c->down.fd = c->up.fd = -1;
  e->conns[slot] = c;
  e->active++;
  return c;
}

static void emit(wr_engine *e, wr_event *ev) {
  if (!e->stopping) e->cb(e->user, ev);
}

static void kill_conn(wr_engine *e, conn *c, const char *reason) {
  if (c->dead) return;
  c->dead = 1;
  set_interest(e, &c->down, 0);
  set_interest(e, &c->up, 0);
  if (c->ssl) {
    SSL_free(c->ssl);
    c->ssl = NULL;
  }
  if (c->down.fd >= 0) close(c->down.fd);
  if (c->up.fd >= 0) close(c->up.fd);
  c->down.fd = c->up.fd = -1;
  e->conns[c->slot] = NULL;
  e->free_slots[e->nfree++] = c->slot;
  e->active--;
  wr_event ev = {.kind = WR_EV_CLOSED, .conn = c->id, .listener = c->listener, .bytes_in = c->bytes_in, .bytes_out = c->bytes_out, .reason = reason, .relayed = c->relayed};
  emit(e, &ev);
  /* Freed after the current batch of epoll events: another event may still point at it. */
  c->next_dead = e->dead;
  e->dead = c;
}

static void reap(wr_engine *e) {
  while (e->dead) {
    conn *c = e->dead;
    e->dead = c->next_dead;
    free(c->p2t);
    free(c->t2p);
    free(c);
  }
  while (e->dead_listeners) {
    listener *l = e->dead_listeners;
    e->dead_listeners = l->next_dead;
    free(l);
  }
}

static int tune_socket(int fd) {
  int one = 1;
  return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static int start_connect(wr_engine *e, conn *c) {
  char portstr[16];
  snprintf(portstr, sizeof portstr, "%d", c->target_port);
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
  struct addrinfo *res = NULL;
  /* Targets are IP literals (the listener's, or one the owner resolved and passed with the allow):
   * getaddrinfo on a literal does not block; a host name fails here, so the connection is closed. */
  hints.ai_flags |= AI_NUMERICHOST;
  if (getaddrinfo(c->target_host, portstr, &hints, &res) != 0 || !res) return -1;
  int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    freeaddrinfo(res);
    return -1;
  }
  tune_socket(fd);
  int r = connect(fd, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  if (r < 0 && errno != EINPROGRESS) {
    close(fd);
    return -1;
  }
  c->up.fd = fd;
  c->state = ST_CONNECTING;
  c->deadline = e->now + e->limits.connect_timeout_ms;
  set_interest(e, &c->up, EPOLLOUT);
  return 0;
}

static void begin_handshake(wr_engine *e, conn *c);
static void step_handshake(wr_engine *e, conn *c);
static void pump(wr_engine *e, conn *c);

static int alloc_buffers(conn *c) {
  c->p2t = malloc(BUF_SIZE);
  c->t2p = malloc(BUF_SIZE);
  return c->p2t && c->t2p ? 0 : -1;
}

/* ALPN on handoff listeners: h2, else http/1.1; plain L4 listeners answer no protocol. */
static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in, unsigned int inlen, void *arg) {
  (void)arg;
  conn *c = SSL_get_app_data(ssl);
  if (!c || c->kind != WR_INBOUND_TLS_HANDOFF) return SSL_TLSEXT_ERR_NOACK;
  static const unsigned char ours[] = "\x02h2\x08http/1.1";
  unsigned char *selected = NULL;
  if (SSL_select_next_proto(&selected, outlen, ours, sizeof ours - 1, in, inlen) != OPENSSL_NPN_NEGOTIATED) return SSL_TLSEXT_ERR_NOACK;
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

static void start_relay(wr_engine *e, conn *c) {
  if (alloc_buffers(c) < 0) {
    kill_conn(e, c, "error");
    return;
  }
  c->state = ST_RELAY;
  c->relayed = 1;
  c->deadline = 0;
  c->last_activity = e->now;
  c->plain_readable = 1;
  c->tls_readable = 1;
  pump(e, c);
}

/* Handoff listeners: the plaintext goes into a socketpair whose other end the owner takes. */
static void start_handoff(wr_engine *e, conn *c) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) {
    kill_conn(e, c, "error");
    return;
  }
  c->up.fd = sv[0];
  const unsigned char *proto = NULL;
  unsigned int proto_len = 0;
  SSL_get0_alpn_selected(c->ssl, &proto, &proto_len);
  char alpn[16] = "";
  if (proto && proto_len < sizeof alpn) {
    memcpy(alpn, proto, proto_len);
    alpn[proto_len] = 0;
  }
  wr_event ev = {.kind = WR_EV_HANDOFF, .conn = c->id, .listener = c->listener, .handoff_fd = sv[1], .alpn = alpn};
  emit(e, &ev);
  start_relay(e, c);
}

static void on_connected(wr_engine *e, conn *c) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(c->up.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
    kill_conn(e, c, "connect");
    return;
  }
  if (c->kind == WR_OUTBOUND_PLAIN) begin_handshake(e, c);
  else start_relay(e, c);
}

static void begin_handshake(wr_engine *e, conn *c) {
  SSL_CTX *ctx = e->tls[c->tls_slot];
  if (!ctx) {
    kill_conn(e, c, "handshake");
    return;
  }
  c->ssl = SSL_new(ctx);
  if (!c->ssl || SSL_set_fd(c->ssl, c->tls->fd) != 1) {
    kill_conn(e, c, "handshake");
    return;
  }
  SSL_set_app_data(c->ssl, c);
  if (c->kind != WR_OUTBOUND_PLAIN) SSL_set_accept_state(c->ssl);
  else SSL_set_connect_state(c->ssl);
  c->state = ST_HANDSHAKE;
  c->deadline = e->now + e->limits.handshake_timeout_ms;
  step_handshake(e, c);
}

static void step_handshake(wr_engine *e, conn *c) {
  ERR_clear_error();
  int r = SSL_do_handshake(c->ssl);
  if (r == 1) {
    X509 *peer = SSL_get0_peer_certificate(c->ssl);
    STACK_OF(X509) *chain = SSL_get0_verified_chain(c->ssl);
    if (!peer || !chain || SSL_get_verify_result(c->ssl) != X509_V_OK) {
      kill_conn(e, c, "verify");
      return;
    }
    /* The verified chain, leaf first: each certificate as a 4-byte big-endian length + DER. */
    size_t total = 0;
    int count = sk_X509_num(chain);
    for (int i = 0; i < count; i++) {
      int n = i2d_X509(sk_X509_value(chain, i), NULL);
      if (n <= 0) {
        kill_conn(e, c, "verify");
        return;
      }
      total += 4 + (size_t)n;
    }
    unsigned char *buf = malloc(total ? total : 1);
    if (!buf) {
      kill_conn(e, c, "error");
      return;
    }
    unsigned char *w = buf;
    for (int i = 0; i < count; i++) {
      unsigned char *start = w + 4;
      int n = i2d_X509(sk_X509_value(chain, i), &start);
      w[0] = (unsigned char)(n >> 24);
      w[1] = (unsigned char)(n >> 16);
      w[2] = (unsigned char)(n >> 8);
      w[3] = (unsigned char)n;
      w += 4 + n;
    }
    c->state = ST_WAIT_PEER;
    c->deadline = e->now + e->limits.decision_timeout_ms;
    set_interest(e, c->tls, 0);
    wr_event ev = {.kind = WR_EV_PEER, .conn = c->id, .listener = c->listener, .der = buf, .der_len = total,
                   .peer_ip = c->kind != WR_OUTBOUND_PLAIN && c->peer_ip[0] ? c->peer_ip : NULL};
    emit(e, &ev);
    free(buf);
    return;
  }
  int err = SSL_get_error(c->ssl, r);
  if (err == SSL_ERROR_WANT_READ) set_interest(e, c->tls, EPOLLIN);
  else if (err == SSL_ERROR_WANT_WRITE) set_interest(e, c->tls, EPOLLOUT);
  else {
    long v = SSL_get_verify_result(c->ssl);
    kill_conn(e, c, v != X509_V_OK ? "verify" : "handshake");
  }
}

/* Moves bytes both ways until nothing can move, then sets what to wait for. */
static void pump(wr_engine *e, conn *c) {
  int progress = 1;
  int fail = 0;
  while (progress && !fail) {
    progress = 0;
    /* plaintext → TLS */
    if (c->p2t_len == 0 && !c->plain_eof && c->plain_readable) {
      ssize_t n = read(c->plain->fd, c->p2t, BUF_SIZE);
      if (n > 0) {
        c->p2t_len = (size_t)n;
        c->p2t_off = 0;
        if (c->plain == &c->down) c->bytes_in += (uint64_t)n;
        if (n < BUF_SIZE) c->plain_readable = 0;
        progress = 1;
      } else if (n == 0) {
        c->plain_eof = 1;
        progress = 1;
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        c->plain_readable = 0;
      } else if (errno != EINTR) {
        fail = 1;
      }
    }
    if (c->p2t_len > 0 && !c->tls_wblocked && !c->ssl_w_wants_read) {
      ERR_clear_error();
      int r = SSL_write(c->ssl, c->p2t + c->p2t_off, (int)(c->p2t_len - c->p2t_off));
      if (r > 0) {
        c->p2t_off += (size_t)r;
        if (c->tls == &c->down) c->bytes_out += (uint64_t)r;
        if (c->p2t_off == c->p2t_len) c->p2t_len = c->p2t_off = 0;
        progress = 1;
      } else {
        int err = SSL_get_error(c->ssl, r);
        if (err == SSL_ERROR_WANT_WRITE) c->tls_wblocked = 1;
        else if (err == SSL_ERROR_WANT_READ) c->ssl_w_wants_read = 1;
        else fail = 1;
      }
    }
    if (c->plain_eof && c->p2t_len == 0 && !c->tls_shut) {
      ERR_clear_error();
      SSL_shutdown(c->ssl); /* close_notify; a full send buffer just loses it, the FIN follows */
      shutdown(c->tls->fd, SHUT_WR);
      c->tls_shut = 1;
      progress = 1;
    }
    /* TLS → plaintext */
    if (c->t2p_len == 0 && !c->tls_eof && !c->ssl_r_wants_write && (c->tls_readable || SSL_has_pending(c->ssl))) {
      ERR_clear_error();
      int r = SSL_read(c->ssl, c->t2p, BUF_SIZE);
      if (r > 0) {
        c->t2p_len = (size_t)r;
        c->t2p_off = 0;
        if (c->tls == &c->down) c->bytes_in += (uint64_t)r;
        if (!SSL_has_pending(c->ssl)) c->tls_readable = 0;
        progress = 1;
      } else {
        int err = SSL_get_error(c->ssl, r);
        if (err == SSL_ERROR_WANT_READ) c->tls_readable = 0;
        else if (err == SSL_ERROR_WANT_WRITE) c->ssl_r_wants_write = 1;
        else if (err == SSL_ERROR_ZERO_RETURN || (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 && r == 0)) {
          c->tls_eof = 1;
          progress = 1;
        } else if (err == SSL_ERROR_SSL && ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
          c->tls_eof = 1;
          progress = 1;
        } else {
          fail = 1;
        }
      }
    }
    if (c->t2p_len > 0 && !c->plain_wblocked) {
      ssize_t n = send(c->plain->fd, c->t2p + c->t2p_off, c->t2p_len - c->t2p_off, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        c->t2p_off += (size_t)n;
        if (c->plain == &c->down) c->bytes_out += (uint64_t)n;
        if (c->t2p_off == c->t2p_len) c->t2p_len = c->t2p_off = 0;
        else c->plain_wblocked = 1;
        progress = 1;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        c->plain_wblocked = 1;
      } else if (n < 0 && errno != EINTR) {
        fail = 1;
      }
    }
    if (c->tls_eof && c->t2p_len == 0 && !c->plain_shut) {
      shutdown(c->plain->fd, SHUT_WR);
      c->plain_shut = 1;
      progress = 1;
    }
  }
  if (fail) {
    kill_conn(e, c, "error");
    return;
  }
  c->last_activity = e->now;
  if (c->plain_shut && c->tls_shut) {
    kill_conn(e, c, "eof");
    return;
  }
  uint32_t pw = 0, tw = 0;
  if (c->p2t_len == 0 && !c->plain_eof) pw |= EPOLLIN;
  if (c->plain_wblocked) pw |= EPOLLOUT;
  if ((c->t2p_len == 0 && !c->tls_eof) || c->ssl_w_wants_read) tw |= EPOLLIN;
  if (c->tls_wblocked || c->ssl_r_wants_write) tw |= EPOLLOUT;
  set_interest(e, c->plain, pw);
  set_interest(e, c->tls, tw);
}

static void on_conn_event(wr_engine *e, ep *p, uint32_t events) {
  conn *c = p->c;
  if (c->dead) return;
  switch (c->state) {
    case ST_CONNECTING:
      if (p == &c->up) on_connected(e, c);
      return;
    case ST_HANDSHAKE:
      if (p == c->tls) step_handshake(e, c);
      return;
    case ST_RELAY:
      if (p == c->plain) {
        if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) c->plain_readable = 1;
        if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) c->plain_wblocked = 0;
      } else {
        if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
          c->tls_readable = 1;
          c->ssl_w_wants_read = 0;
        }
        if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
          c->tls_wblocked = 0;
          c->ssl_r_wants_write = 0;
        }
      }
      pump(e, c);
      return;
    default:
      /* Waiting for a decision: nothing registered; ignore stray events. */
      return;
  }
}

static void on_accept(wr_engine *e, listener *l) {
  /* Closed by an earlier command of this batch: its fd number may already be someone else's. */
  if (!l->open) return;
  for (int i = 0; i < 64; i++) {
    struct sockaddr_storage from;
    socklen_t from_len = sizeof from;
    int fd = accept4(l->ep.fd, (struct sockaddr *)&from, &from_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      /* Out of descriptors (or kernel memory): the pending connection stays in the backlog and
       * level-triggered epoll would report the listener again at once, spinning the thread.
       * Stop watching it until the next sweep; accepting resumes when descriptors free up. */
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        set_interest(e, &l->ep, 0);
        l->paused_until = e->now + 250;
      }
      return;
    }
    if (e->active >= e->limits.max_connections) {
      close(fd);
      continue;
    }
    conn *c = new_conn(e);
    if (!c) {
      close(fd);
      continue;
    }
    tune_socket(fd);
    c->kind = l->kind;
    c->listener = l->id;
    c->tls_slot = l->tls_slot;
    c->down.fd = fd;
    memcpy(c->target_host, l->target_host, sizeof c->target_host);
    c->target_port = l->target_port;
    c->peer_ip[0] = 0;
    if (from.ss_family == AF_INET) inet_ntop(AF_INET, &((struct sockaddr_in *)&from)->sin_addr, c->peer_ip, sizeof c->peer_ip);
    else if (from.ss_family == AF_INET6) inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&from)->sin6_addr, c->peer_ip, sizeof c->peer_ip);
    if (l->kind != WR_OUTBOUND_PLAIN) {
      c->tls = &c->down;
      c->plain = &c->up;
      begin_handshake(e, c);
    } else {
      c->plain = &c->down;
      c->tls = &c->up;
      c->state = ST_WAIT_EGRESS;
      c->deadline = e->now + e->limits.decision_timeout_ms;
      wr_event ev = {.kind = WR_EV_ACCEPTED, .conn = c->id, .listener = l->id};
      emit(e, &ev);
    }
  }
}

/* An allow moves a connection on only from the decision point it answers (the event kind JS
 * saw): an egress allow can never stand in for the peer check, nor the other way round. */
static void do_allow(wr_engine *e, conn *c, uint32_t stage, const char *target) {
  /* A target resolved by the owner (a host name's address) replaces the listener's for this
   * connection; only where the connection is about to connect. */
  if (target[0] && ((c->state == ST_WAIT_EGRESS && stage == WR_EV_ACCEPTED) || (c->state == ST_WAIT_PEER && stage == WR_EV_PEER && c->kind == WR_INBOUND_TLS)))
    snprintf(c->target_host, sizeof c->target_host, "%s", target);
  if (c->state == ST_WAIT_EGRESS && stage == WR_EV_ACCEPTED) {
    if (start_connect(e, c) < 0) kill_conn(e, c, "connect");
  } else if (c->state == ST_WAIT_PEER && stage == WR_EV_PEER) {
    if (c->kind == WR_INBOUND_TLS) {
      if (start_connect(e, c) < 0) kill_conn(e, c, "connect");
    } else if (c->kind == WR_INBOUND_TLS_HANDOFF) {
      start_handoff(e, c);
    } else {
      start_relay(e, c);
    }
  }
}

static void close_listener(wr_engine *e, listener *l) {
  if (!l->open) return;
  set_interest(e, &l->ep, 0);
  close(l->ep.fd);
  l->open = 0;
}

static void run_commands(wr_engine *e) {
  uint64_t v;
  ssize_t r = read(e->wakefd, &v, sizeof v);
  (void)r;
  pthread_mutex_lock(&e->lock);
  cmd *c = e->head;
  e->head = e->tail = NULL;
  pthread_mutex_unlock(&e->lock);
  while (c) {
    cmd *next = c->next;
    conn *cn;
    switch (c->type) {
      case CMD_STOP:
        e->stopping = 1;
        break;
      case CMD_SET_TLS:
        if (e->tls[c->slot]) SSL_CTX_free(e->tls[c->slot]);
        e->tls[c->slot] = c->ctx;
        break;
      case CMD_LISTEN:
        if (e->listeners[c->listener]) {
          /* An event of this batch may still point at the old one: free it after the batch. */
          close_listener(e, e->listeners[c->listener]);
          e->listeners[c->listener]->next_dead = e->dead_listeners;
          e->dead_listeners = e->listeners[c->listener];
        }
        e->listeners[c->listener] = c->l;
        set_interest(e, &c->l->ep, EPOLLIN);
        break;
      case CMD_UNLISTEN:
        if (c->listener < MAX_LISTENERS && e->listeners[c->listener]) close_listener(e, e->listeners[c->listener]);
        break;
      case CMD_ALLOW:
        if ((cn = find_conn(e, c->conn))) do_allow(e, cn, c->stage, c->target);
        break;
      case CMD_DENY:
        if ((cn = find_conn(e, c->conn))) kill_conn(e, cn, "denied");
        break;
      case CMD_CLOSE:
        if ((cn = find_conn(e, c->conn))) kill_conn(e, cn, "closed");
        break;
    }
    free(c);
    c = next;
  }
}

static void sweep(wr_engine *e) {
  for (int i = 0; i < MAX_LISTENERS; i++) {
    listener *l = e->listeners[i];
    if (l && l->open && l->paused_until != 0 && e->now >= l->paused_until) {
      l->paused_until = 0;
      set_interest(e, &l->ep, EPOLLIN);
    }
  }
  for (uint32_t i = 0; i < e->cap; i++) {
    conn *c = e->conns[i];
    if (!c || c->dead) continue;
    if (c->deadline != 0 && e->now >= c->deadline) {
      kill_conn(e, c, c->state == ST_HANDSHAKE ? "handshake" : c->state == ST_CONNECTING ? "connect" : "decision");
    } else if (c->state == ST_RELAY && e->limits.idle_timeout_ms > 0 && e->now - c->last_activity >= e->limits.idle_timeout_ms) {
      kill_conn(e, c, "idle");
    }
  }
}

static void *loop(void *arg) {
  wr_engine *e = arg;
  /* OpenSSL writes to the sockets with write(2), not send(MSG_NOSIGNAL): a peer's RST during
   * SSL_write raises SIGPIPE on this thread. Node ignores SIGPIPE, but an embedder or a
   * process.on('SIGPIPE') listener must not see (or die of) the relay's. Blocked here, a
   * thread-directed SIGPIPE stays pending on this thread and the write fails with EPIPE. */
  sigset_t pipe_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, NULL);
  struct epoll_event evs[256];
  uint64_t next_sweep = now_ms() + 250;
  while (!e->stopping) {
    int n = epoll_wait(e->epfd, evs, 256, 250);
    e->now = now_ms();
    for (int i = 0; i < n; i++) {
      ep *p = evs[i].data.ptr;
      if (p->type == EP_WAKE) run_commands(e);
      else if (p->type == EP_LISTENER) on_accept(e, p->l);
      else on_conn_event(e, p, evs[i].events);
      if (e->stopping) break;
    }
    if (e->now >= next_sweep) {
      sweep(e);
      next_sweep = e->now + 250;
    }
    reap(e);
  }
  for (uint32_t i = 0; i < e->cap; i++)
    if (e->conns[i]) kill_conn(e, e->conns[i], "closed");
  reap(e);
  for (int i = 0; i < MAX_LISTENERS; i++)
    if (e->listeners[i]) {
      close_listener(e, e->listeners[i]);
      free(e->listeners[i]);
      e->listeners[i] = NULL;
    }
  return NULL;
}

/* ---------- public API ---------- */

wr_engine *wr_create(wr_event_cb cb, void *user, const wr_limits *limits) {
  wr_engine *e = calloc(1, sizeof *e);
  if (!e) return NULL;
  e->cb = cb;
  e->user = user;
  e->limits = *limits;
  if (e->limits.max_connections == 0) e->limits.max_connections = 10000;
  e->epfd = epoll_create1(EPOLL_CLOEXEC);
  e->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  pthread_mutex_init(&e->lock, NULL);
  e->now = now_ms();
  if (e->epfd < 0 || e->wakefd < 0) goto fail;
  e->wake_ep.type = EP_WAKE;
  e->wake_ep.fd = e->wakefd;
  set_interest(e, &e->wake_ep, EPOLLIN);
  if (pthread_create(&e->thread, NULL, loop, e) != 0) goto fail;
  return e;
fail:
  if (e->epfd >= 0) close(e->epfd);
  if (e->wakefd >= 0) close(e->wakefd);
  free(e);
  return NULL;
}

void wr_destroy(wr_engine *e) {
  simple_cmd(e, CMD_STOP, 0, 0);
  pthread_join(e->thread, NULL);
  /* Commands queued after STOP are dropped. */
  cmd *c = e->head;
  while (c) {
    cmd *n = c->next;
    if (c->ctx) SSL_CTX_free(c->ctx);
    if (c->l) {
      close(c->l->ep.fd);
      free(c->l);
    }
    free(c);
    c = n;
  }
  for (int i = 0; i < MAX_SLOTS; i++)
    if (e->tls[i]) SSL_CTX_free(e->tls[i]);
  close(e->epfd);
  close(e->wakefd);
  free(e->conns);
  free(e->gens);
  free(e->free_slots);
  pthread_mutex_destroy(&e->lock);
  free(e);
}

static void ssl_error(char *err, size_t len, const char *what) {
  unsigned long code = ERR_get_error();
  char buf[256] = "";
  if (code) ERR_error_string_n(code, buf, sizeof buf);
  snprintf(err, len, "%s%s%s", what, code ? ": " : "", buf);
  ERR_clear_error();
}

int wr_set_tls(wr_engine *e, uint32_t slot, int server, const char *cert_pem, const char *key_pem, const char *ca_pem, char *err, size_t err_len) {
  if (slot >= MAX_SLOTS) {
    snprintf(err, err_len, "slot out of range");
    return -1;
  }
  ERR_clear_error();
  SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  BIO *bio = NULL;
  X509 *x = NULL;
  EVP_PKEY *key = NULL;
  if (!ctx) {
    ssl_error(err, err_len, "context");
    return -1;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  if (SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256") != 1 ||
      SSL_CTX_set_cipher_list(ctx, "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305") != 1 ||
      SSL_CTX_set1_groups_list(ctx, "X25519:P-256") != 1) {
    ssl_error(err, err_len, "ciphers");
    goto fail;
  }
  SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_NO_TICKET);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_read_ahead(ctx, 1);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  if (server) SSL_CTX_set_num_tickets(ctx, 0);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
  if (server) SSL_CTX_set_alpn_select_cb(ctx, select_alpn, NULL);

  /* Own chain: leaf then intermediates. */
  bio = BIO_new_mem_buf(cert_pem, -1);
  x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
  if (!x || SSL_CTX_use_certificate(ctx, x) != 1) {
    ssl_error(err, err_len, "certificate");
    goto fail;
  }
  X509_free(x);
  x = NULL;
  while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
    if (SSL_CTX_add0_chain_cert(ctx, x) != 1) {
      ssl_error(err, err_len, "chain");
      goto fail;
    }
    x = NULL;
  }
  ERR_clear_error();
  BIO_free(bio);
  bio = BIO_new_mem_buf(key_pem, -1);
  key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
  if (!key || SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    ssl_error(err, err_len, "key");
    goto fail;
  }
  EVP_PKEY_free(key);
  key = NULL;
  BIO_free(bio);
  /* Trust bundle. */
  bio = BIO_new_mem_buf(ca_pem, -1);
  X509_STORE *store = SSL_CTX_get_cert_store(ctx);
  int count = 0;
  while (bio && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
    if (X509_STORE_add_cert(store, x) != 1) {
      ssl_error(err, err_len, "bundle");
      goto fail;
    }
    X509_free(x);
    x = NULL;
    count++;
  }
  ERR_clear_error();
  if (count == 0) {
    snprintf(err, err_len, "bundle: no certificate");
    goto fail;
  }
  BIO_free(bio);
  cmd *c = calloc(1, sizeof *c);
  if (!c) {
    SSL_CTX_free(ctx);
    snprintf(err, err_len, "out of memory");
    return -1;
  }
  c->type = CMD_SET_TLS;
  c->slot = slot;
  c->ctx = ctx;
  push_cmd(e, c);
  return 0;
fail:
  if (x) X509_free(x);
  if (key) EVP_PKEY_free(key);
  if (bio) BIO_free(bio);
  SSL_CTX_free(ctx);
  return -1;
}

int wr_listen(wr_engine *e, uint32_t id, int kind, const char *host, int port, uint32_t tls_slot, const char *target_host, int target_port) {
  if (id >= MAX_LISTENERS || tls_slot >= MAX_SLOTS || (kind != WR_INBOUND_TLS && kind != WR_OUTBOUND_PLAIN && kind != WR_INBOUND_TLS_HANDOFF) || strlen(target_host) >= 256 || port < 0 || port > 65535 || target_port <= 0 || target_port > 65535) return -EINVAL;
  char portstr[16];
  snprintf(portstr, sizeof portstr, "%d", port);
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE};
  struct addrinfo *res = NULL;
  if (getaddrinfo(host, portstr, &hints, &res) != 0 || !res) return -EINVAL;
  int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    int er = errno;
    freeaddrinfo(res);
    return -er;
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 511) < 0) {
    int er = errno;
    close(fd);
    freeaddrinfo(res);
    return -er;
  }
  freeaddrinfo(res);
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  getsockname(fd, (struct sockaddr *)&ss, &sl);
  int bound = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port) : ntohs(((struct sockaddr_in *)&ss)->sin_port);
  listener *l = calloc(1, sizeof *l);
  cmd *c = calloc(1, sizeof *c);
  if (!l || !c) {
    free(l);
    free(c);
    close(fd);
    return -ENOMEM;
  }
  l->ep.type = EP_LISTENER;
  l->ep.fd = fd;
  l->ep.l = l;
  l->id = id;
  l->kind = kind;
  l->tls_slot = tls_slot;
  l->open = 1;
  snprintf(l->target_host, sizeof l->target_host, "%s", target_host);
  l->target_port = target_port;
  c->type = CMD_LISTEN;
  c->listener = id;
  c->l = l;
  push_cmd(e, c);
  return bound;
}

void wr_unlisten(wr_engine *e, uint32_t id) { simple_cmd(e, CMD_UNLISTEN, 0, id); }
void wr_allow(wr_engine *e, uint64_t id, int stage, const char *target) {
  cmd *c = calloc(1, sizeof *c);
  if (!c) return; /* never relayed: the decision timeout closes it */
  c->type = CMD_ALLOW;
  c->conn = id;
  c->stage = (uint32_t)stage;
  if (target) snprintf(c->target, sizeof c->target, "%s", target);
  push_cmd(e, c);
}
void wr_deny(wr_engine *e, uint64_t id) { simple_cmd(e, CMD_DENY, id, 0); }
void wr_close(wr_engine *e, uint64_t id) { simple_cmd(e, CMD_CLOSE, id, 0); }

#ifdef WR_STANDALONE
/* Prototype driver: allow everything. relay <srv|cli> listenPort targetPort */
static wr_engine *G;
static void on_ev(void *u, const wr_event *ev) {
  (void)u;
  if (ev->kind == WR_EV_ACCEPTED || ev->kind == WR_EV_PEER) wr_allow(G, ev->conn, ev->kind, NULL);
}
static char *slurp(const char *p) {
  FILE *f = fopen(p, "rb");
  if (!f) return NULL;
  static char bufs[4][16384];
  static int k = 0;
  char *b = bufs[k++];
  size_t n = fread(b, 1, 16383, f);
  b[n] = 0;
  fclose(f);
  return b;
}
int main(int argc, char **argv) {
  if (argc < 4) return 2;
  wr_limits lim = {10000, 5000, 60000, 5000, 10000};
  G = wr_create(on_ev, NULL, &lim);
  int srv = strcmp(argv[1], "srv") == 0;
  char err[256];
  if (wr_set_tls(G, 0, srv, slurp(srv ? "/tmp/exp/server.crt" : "/tmp/exp/client.crt"), slurp(srv ? "/tmp/exp/server.key" : "/tmp/exp/client.key"), slurp("/tmp/exp/ca.pem"), err, sizeof err) != 0) {
    fprintf(stderr, "tls: %s\n", err);
    return 1;
  }
  int p = wr_listen(G, 1, srv ? WR_INBOUND_TLS : WR_OUTBOUND_PLAIN, "127.0.0.1", atoi(argv[2]), 0, "127.0.0.1", atoi(argv[3]));
  fprintf(stderr, "listening %d\n", p);
  pause();
  return 0;
}
#endif
