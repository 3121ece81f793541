/*
 * A second implementation of the viamillipede wire protocol, in C, for the
 * conformance tests (test/conformance/run.ts builds and drives it).
 *
 * Everything on the wire is encoded and decoded by the XDR routines rpcgen
 * generates from protocol/viamillipede.x (viamillipede.h, viamillipede_xdr.c)
 * over libtirpc's xdrmem streams. This file has no byte-order code of its
 * own: the RFC 5531 record mark and the big-endian words the checksums hash
 * are written and read by xdr_u_int and xdr_u_quad_t too. Checksums are
 * XXH3-64 from xxhash.h (header only, XXH_INLINE_ALL).
 *
 * Modes (stdout carries the stream or JSON only; diagnostics go to stderr):
 *
 *   peer rx [-c PHRASE] [-w FEET] [-p PACE_MS] [-t TIMEOUT_S] [-d DEADLINE_S] [-v]
 *           [-x EXIT_CODE | -X SIGNAL_NAME] [-e STDERR] [-1]
 *       Listens on 127.0.0.1, port from the OS, and prints
 *       "peer: listening on port N" on stderr. Receives one stream over any
 *       number of connections (up to MAX_CONNECTIONS), writes it to stdout
 *       in order, confirms it and exits 0 once the transmitter hangs up.
 *       Takes version 1 and version 2 (labelled) hellos, printing
 *       "peer rx: connection N: label L" for the latter, and echoes
 *       CAP_PRODUCER_FAILED. -x/-X: a pretend command that read the stream
 *       exited EXIT_CODE or was killed by SIGNAL_NAME, with STDERR as its
 *       stderr (-e): CAP_VERDICT is echoed and the verdict precedes each
 *       confirmation. -1: answer as a version 1 receiver (version 2 refused,
 *       no capability echoed).
 *   peer tx HOST PORT [-n CONNECTIONS] [-c PHRASE] [-b FOOT_BYTES]
 *                     [-f FRAGMENT_BYTES] [-p PACE_MS] [-t TIMEOUT_S] [-d DEADLINE_S] [-v]
 *                     [-l LABEL] [-P]
 *       Sends stdin to the receiver at HOST (an IPv4 address) over a fixed
 *       number of connections; -f sends every record as fragments of at most
 *       that many bytes (RFC 5531 allows it; receivers must reassemble).
 *       Offers CAP_VERDICT and CAP_PRODUCER_FAILED; -l sends a version 2
 *       hello carrying LABEL. Exits 0 once the receiver confirmed the whole
 *       stream and, where it promised a verdict, its command exited 0; prints
 *       "peer tx: verdict: ..." either way. -P: at the end of input, abort as
 *       a failed producer (ABORT_PRODUCER_FAILED where negotiated, else
 *       ABORT_INPUT) instead of ending the stream, and exit 7.
 *   rx and tx: -p PACE_MS
 *       moves at most one foot per PACE_MS (so a test can watch heartbeats);
 *       -t sets the heartbeat (every TIMEOUT_S / 4) and the silence limit.
 *       At a successful end one line "peer ROLE: stats: ..." goes to stderr
 *       (connections joined, feet per connection, pings answered, pongs received,
 *       connections lost).
 *   peer golden
 *       Reads lines "hello|hello_v2|hello_reply|frame HEX" and answers each with one
 *       JSON line: {"ok":true,"value":V,"hex":H[,"seed":S,"checksum":C]} where
 *       V is the decoded value (hypers as decimal strings, strings and opaques
 *       as hex), H the value encoded again, and for a foot S and C the
 *       checksum seed and CHECKSUM_XXH3_64 this peer computes; or
 *       {"ok":false,"error":...} when the bytes are not a valid encoding
 *       (including trailing bytes).
 *   peer info
 *       {"byte_order":"big-endian"|"little-endian"}: what the machine running
 *       this binary is (under qemu-s390x: big-endian). Used only to report.
 *
 * What it does not do (a conformance peer, not a second product): re-dial,
 * hedge stragglers or ask for missing feet. It answers every PING, sends its
 * own, drops a connection silent for TIMEOUT_S, and gives up at DEADLINE_S.
 *
 * Exit codes follow the CLI's where they overlap: 0 success, 1 internal or
 * usage, 4 refused, 5 protocol, 6 output closed, 7 input, 9 integrity,
 * 10 peer aborted, vanished or the deadline passed.
 */
#define XXH_INLINE_ALL
#include "xxhash.h"
#include "viamillipede.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNECTIONS 8
#define PINGS_PER_TIMEOUT 4
#define TICK_MS 250
#define LINGER_MS 5000
#define REFUSED_LINGER_MS 2000
#define READ_CHUNK_BYTES 65536
#define READS_PER_WAKEUP 16
/* Feet one connection carries unacknowledged, as the TypeScript transmitter. */
#define MAX_FEET_PER_CONNECTION 4
/* Feet the transmitter holds at most (the receiver's window may be larger). */
#define TX_HELD_FEET 16
#define DEFAULT_WINDOW_FEET 8
#define MAX_WINDOW_FEET 64
#define MAX_CHECKSUM_FAILURES_PER_FOOT 8
#define LAST_FRAGMENT_BIT 0x80000000u
#define FRAGMENT_LENGTH_MASK 0x7fffffffu
#define MARK_BYTES 4

enum exit_code {
    EXIT_OK = 0,
    EXIT_INTERNAL = 1,
    EXIT_REFUSED = 4,
    EXIT_PROTOCOL = 5,
    EXIT_OUTPUT_CLOSED = 6,
    EXIT_INPUT = 7,
    EXIT_INTEGRITY = 9,
    EXIT_PEER_LOST = 10,
};

/* The generated routines all have this shape; xdrproc_t is variadic in TI-RPC. */
typedef bool_t (*codec_fn)(XDR *, void *);

static const char *role = "peer";
static bool verbose;
static int64_t deadline_at_ms;
static int64_t timeout_ms = 5000;
static const char *checkphrase = "";
/* -p: at most one foot per this many ms (tx sends, rx writes), so heartbeats get to run. */
static int64_t pace_ms;
static int64_t last_paced_ms;

/* What the run did, printed on stderr at a successful end for the test to check. */
#define MAX_COUNTED_CONNECTIONS 64
static struct {
    u_quad_t feet_by_conn[MAX_COUNTED_CONNECTIONS];
    u_quad_t connections_joined, pings_answered, pongs_received, connections_lost;
} stats;

static void count_foot(u_int conn_id)
{
    if (conn_id < MAX_COUNTED_CONNECTIONS) stats.feet_by_conn[conn_id]++;
}

/* Waits for the pace; true when a foot may move now. */
static bool paced(void)
{
    if (pace_ms == 0) return true;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    if (now - last_paced_ms < pace_ms) return false;
    last_paced_ms = now;
    return true;
}

/* One line on stderr, "peer ROLE: ...". */
static void say(const char *fmt, va_list args)
{
    fprintf(stderr, "peer %s: ", role);
    vfprintf(stderr, fmt, args);
    fputc('\n', stderr);
}

static void die(int code, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
static void die(int code, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    say(fmt, args);
    va_end(args);
    exit(code);
}

static void debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void debug(const char *fmt, ...)
{
    if (!verbose) return;
    va_list args;
    va_start(args, fmt);
    say(fmt, args);
    va_end(args);
}

static void *xmalloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    if (p == NULL) die(EXIT_INTERNAL, "out of memory (%zu bytes)", bytes);
    return p;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t random64(void)
{
    uint64_t value;
    if (getrandom(&value, sizeof value, 0) != (ssize_t)sizeof value) die(EXIT_INTERNAL, "getrandom failed");
    return value;
}

/* ---- XDR over memory -------------------------------------------------------------- */

/* Encodes `value` into buf; returns the byte count, or -1 when it does not fit or is invalid. */
static int64_t encode_into(codec_fn codec, void *value, unsigned char *buf, u_int capacity)
{
    XDR xdrs;
    xdrmem_create(&xdrs, (char *)buf, capacity, XDR_ENCODE);
    bool ok = codec(&xdrs, value);
    int64_t length = ok ? (int64_t)xdr_getpos(&xdrs) : -1;
    xdr_destroy(&xdrs);
    return length;
}

/*
 * Decodes exactly `length` bytes into *value (which must start zeroed, so
 * that variable-length fields are allocated). False when malformed or when
 * bytes are left over; *value is then freed.
 */
static bool decode_exact(codec_fn codec, void *value, const unsigned char *buf, u_int length)
{
    XDR xdrs;
    xdrmem_create(&xdrs, (char *)buf, length, XDR_DECODE);
    bool ok = codec(&xdrs, value) && xdr_getpos(&xdrs) == length;
    xdr_destroy(&xdrs);
    if (!ok) xdr_free((xdrproc_t)codec, value);
    return ok;
}

/* RFC 5531 record mark: one XDR unsigned int, top bit = last fragment. */
static void put_mark(unsigned char out[MARK_BYTES], u_int length, bool last)
{
    u_int word = (last ? LAST_FRAGMENT_BIT : 0) | length;
    XDR xdrs;
    xdrmem_create(&xdrs, (char *)out, MARK_BYTES, XDR_ENCODE);
    if (!xdr_u_int(&xdrs, &word)) die(EXIT_INTERNAL, "cannot encode a record mark");
    xdr_destroy(&xdrs);
}

static u_int get_mark(const unsigned char in[MARK_BYTES])
{
    u_int word = 0;
    XDR xdrs;
    xdrmem_create(&xdrs, (char *)in, MARK_BYTES, XDR_DECODE);
    if (!xdr_u_int(&xdrs, &word)) die(EXIT_INTERNAL, "cannot decode a record mark");
    xdr_destroy(&xdrs);
    return word;
}

/* ---- checksums (protocol/README.md, "Stream digest") ------------------------------ */

/* XXH3-64 (seed 0) of be64(a) || be64(b) || be64(c), the words written by XDR. */
static uint64_t xxh3_of_words(u_quad_t a, u_quad_t b, u_quad_t c)
{
    unsigned char bytes[24];
    XDR xdrs;
    xdrmem_create(&xdrs, (char *)bytes, sizeof bytes, XDR_ENCODE);
    if (!xdr_u_quad_t(&xdrs, &a) || !xdr_u_quad_t(&xdrs, &b) || !xdr_u_quad_t(&xdrs, &c)) {
        die(EXIT_INTERNAL, "cannot encode checksum words");
    }
    xdr_destroy(&xdrs);
    return XXH3_64bits(bytes, sizeof bytes);
}

/* The CHECKSUM_XXH3_64 seed: the low 32 bits of XXH3-64 of id, offset and the header's length. */
static uint64_t foot_seed(u_quad_t id, u_quad_t offset, u_int length)
{
    return xxh3_of_words(id, offset, length) & UINT64_C(0xffffffff);
}

/* CHECKSUM_XXH3_64: the payload hashed with a seed bound to id, offset and the header's length. */
static uint64_t foot_checksum(u_quad_t id, u_quad_t offset, const void *payload, size_t payload_bytes, u_int length)
{
    return XXH3_64bits_withSeed(payload, payload_bytes, foot_seed(id, offset, length));
}

/* DIGEST_XXH3_CHAIN: d(n+1) = XXH3-64(be64(d(n)) || be64(checksum n) || be64(length n)). */
static uint64_t digest_next(uint64_t digest, uint64_t checksum, u_int length)
{
    return xxh3_of_words(digest, checksum, length);
}

/* ---- connections ------------------------------------------------------------------ */

enum conn_state { CONN_FREE, CONN_AWAIT_HELLO, CONN_HELLO_SENT, CONN_JOINED, CONN_REFUSED };

struct conn {
    enum conn_state state;
    int fd;
    u_int id;
    /* Record decoding: a mark, then a fragment; repeated until the last fragment. */
    unsigned char mark[MARK_BYTES];
    u_int mark_fill;
    int64_t fragment_left; /* -1 while reading a mark */
    bool last_fragment;
    unsigned char *record;
    u_int record_bytes, record_capacity, max_record_bytes;
    /* Bytes waiting for the kernel. */
    unsigned char *out;
    size_t out_head, out_bytes, out_capacity;
    int64_t last_ping_ms, last_heard_ms, refused_at_ms;
    u_quad_t ping_nonce;
    int carried;   /* tx: unacknowledged feet sent here */
    bool end_sent; /* tx: end_of_stream went out here */
    u_int caps;    /* the CAP_* bits the welcome carried: what both ends use here */
};

static struct conn conns[MAX_CONNECTIONS];
static int listen_fd = -1;
static u_int next_conn_id = 1;
static bool is_receiver;
/* tx: confirmed or failing; connections closing now are expected. */
static bool finished;
/* Every record is encoded here first, then framed into the connection's queue. */
static unsigned char *scratch;
static u_int scratch_capacity;
static u_int fragment_bytes = FRAGMENT_LENGTH_MASK;
/* rx -x/-X/-e: a pretend command's end; not given: no command, so no CAP_VERDICT. */
static struct {
    bool given;
    consumer_state state;
    u_int exit_code;
    const char *signal_name;
    const char *stderr_text;
} pretend = {.stderr_text = ""};
/* rx -1: speak version 1 only, as receivers before version 2 did. */
static bool version_1_only;
/* tx -l: a version 2 hello with this label; -P: end as a failed producer. */
static const char *label;
static bool producer_fails;

/* 1..MAX_LABEL_BYTES of [A-Za-z0-9._:-] (protocol/README.md). */
static bool label_ok(const char *text)
{
    size_t n = strlen(text);
    if (n == 0 || n > MAX_LABEL_BYTES) return false;
    for (size_t i = 0; i < n; i++) {
        char ch = text[i];
        bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || strchr("._:-", ch);
        if (!ok) return false;
    }
    return true;
}

static void on_record(struct conn *c, const unsigned char *record, u_int length);
static void on_conn_closed(struct conn *c);
static void on_conn_idle(struct conn *c);

static bool has_output(const struct conn *c)
{
    return c->out_head < c->out_bytes;
}

static bool session_over(void);

static void close_conn(struct conn *c, const char *reason)
{
    if (c->state == CONN_FREE) return;
    debug("connection %u closed: %s", c->id, reason);
    if (c->state == CONN_JOINED && !session_over()) {
        stats.connections_lost++;
        fprintf(stderr, "peer %s: connection %u lost: %s\n", role, c->id, reason);
    }
    close(c->fd);
    free(c->record);
    free(c->out);
    bool was_joined = c->state == CONN_JOINED;
    memset(c, 0, sizeof *c);
    c->state = CONN_FREE;
    c->fd = -1;
    if (was_joined) on_conn_closed(c);
}

static void flush(struct conn *c)
{
    while (has_output(c)) {
        ssize_t n = send(c->fd, c->out + c->out_head, c->out_bytes - c->out_head, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            if (errno == EINTR) continue;
            close_conn(c, strerror(errno));
            return;
        }
        c->out_head += (size_t)n;
    }
    c->out_head = c->out_bytes = 0;
}

static void queue_bytes(struct conn *c, const unsigned char *bytes, size_t count)
{
    if (c->out_head > 0 && c->out_head == c->out_bytes) c->out_head = c->out_bytes = 0;
    if (c->out_bytes + count > c->out_capacity) {
        if (c->out_head > 0) {
            memmove(c->out, c->out + c->out_head, c->out_bytes - c->out_head);
            c->out_bytes -= c->out_head;
            c->out_head = 0;
        }
        if (c->out_bytes + count > c->out_capacity) {
            size_t capacity = c->out_capacity ? c->out_capacity : 4096;
            while (capacity < c->out_bytes + count) capacity *= 2;
            unsigned char *grown = realloc(c->out, capacity);
            if (grown == NULL) die(EXIT_INTERNAL, "out of memory");
            c->out = grown;
            c->out_capacity = capacity;
        }
    }
    memcpy(c->out + c->out_bytes, bytes, count);
    c->out_bytes += count;
}

/* Encodes `value` as one record (in fragments of at most fragment_bytes) and starts sending it. */
static void send_record(struct conn *c, codec_fn codec, void *value, u_int capacity)
{
    if (c->state == CONN_FREE) return;
    if (capacity > scratch_capacity) {
        free(scratch);
        scratch = xmalloc(capacity);
        scratch_capacity = capacity;
    }
    int64_t length = encode_into(codec, value, scratch, capacity);
    if (length < 0) die(EXIT_INTERNAL, "a message does not encode within %u bytes", capacity);
    u_int at = 0;
    do {
        u_int piece = (u_int)length - at < fragment_bytes ? (u_int)length - at : fragment_bytes;
        unsigned char mark[MARK_BYTES];
        put_mark(mark, piece, at + piece == (u_int)length);
        queue_bytes(c, mark, sizeof mark);
        queue_bytes(c, scratch + at, piece);
        at += piece;
    } while (at < (u_int)length);
    flush(c);
}

static void send_frame(struct conn *c, frame *f)
{
    u_int capacity = f->kind == FRAME_FOOT ? f->frame_u.foot.payload.payload_len + FOOT_RECORD_OVERHEAD_BYTES
                                           : MAX_CONTROL_RECORD_BYTES;
    send_record(c, (codec_fn)xdr_frame, f, capacity);
}

static void send_abort(struct conn *c, abort_code code, const char *text)
{
    frame f = {.kind = FRAME_ABORT};
    f.frame_u.abort.code = code;
    f.frame_u.abort.text = (char *)text;
    send_frame(c, &f);
}

/* Feeds received bytes through the record decoder; whole records go to on_record. */
static void on_bytes(struct conn *c, const unsigned char *bytes, size_t count)
{
    while (count > 0 && c->state != CONN_FREE) {
        if (c->fragment_left < 0) {
            u_int take = MARK_BYTES - c->mark_fill;
            if (take > count) take = (u_int)count;
            memcpy(c->mark + c->mark_fill, bytes, take);
            c->mark_fill += take;
            bytes += take;
            count -= take;
            if (c->mark_fill < MARK_BYTES) return;
            c->mark_fill = 0;
            u_int word = get_mark(c->mark);
            u_int length = word & FRAGMENT_LENGTH_MASK;
            c->last_fragment = (word & LAST_FRAGMENT_BIT) != 0;
            /* The limit is checked before a byte of the fragment is kept. */
            if ((uint64_t)c->record_bytes + length > c->max_record_bytes) {
                char reason[128];
                snprintf(reason, sizeof reason, "record of %" PRIu64 " bytes exceeds the limit of %u",
                         (uint64_t)c->record_bytes + length, c->max_record_bytes);
                close_conn(c, reason);
                return;
            }
            if (c->record_bytes + length > c->record_capacity) {
                u_int capacity = c->record_capacity ? c->record_capacity : 512;
                while (capacity < c->record_bytes + length) capacity *= 2;
                if (capacity > c->max_record_bytes) capacity = c->max_record_bytes;
                unsigned char *grown = realloc(c->record, capacity);
                if (grown == NULL) die(EXIT_INTERNAL, "out of memory");
                c->record = grown;
                c->record_capacity = capacity;
            }
            c->fragment_left = length;
        } else {
            size_t take = (size_t)c->fragment_left < count ? (size_t)c->fragment_left : count;
            memcpy(c->record + c->record_bytes, bytes, take);
            c->record_bytes += (u_int)take;
            c->fragment_left -= (int64_t)take;
            bytes += take;
            count -= take;
        }
        if (c->fragment_left == 0) {
            c->fragment_left = -1;
            if (c->last_fragment) {
                u_int length = c->record_bytes;
                c->record_bytes = 0;
                on_record(c, c->record, length);
            }
        }
    }
}

static void on_readable(struct conn *c)
{
    static unsigned char chunk[READ_CHUNK_BYTES];
    for (int i = 0; i < READS_PER_WAKEUP && c->state != CONN_FREE; i++) {
        ssize_t n = recv(c->fd, chunk, sizeof chunk, 0);
        if (n > 0) {
            c->last_heard_ms = now_ms();
            if (c->state == CONN_REFUSED) continue; /* whatever a refused peer says is ignored */
            on_bytes(c, chunk, (size_t)n);
        } else if (n == 0) {
            close_conn(c, "closed by the peer");
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return;
        } else if (errno != EINTR) {
            close_conn(c, strerror(errno));
        }
    }
}

static void set_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) die(EXIT_INTERNAL, "fcntl: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static struct conn *add_conn(int fd, enum conn_state state, u_int max_record_bytes)
{
    for (int i = 0; i < MAX_CONNECTIONS; i++) {
        struct conn *c = &conns[i];
        if (c->state != CONN_FREE) continue;
        memset(c, 0, sizeof *c);
        c->state = state;
        c->fd = fd;
        c->id = next_conn_id++;
        c->fragment_left = -1;
        c->max_record_bytes = max_record_bytes;
        c->last_heard_ms = c->last_ping_ms = now_ms();
        set_nonblocking(fd);
        return c;
    }
    return NULL;
}

static int joined_count(void)
{
    int count = 0;
    for (int i = 0; i < MAX_CONNECTIONS; i++) count += conns[i].state == CONN_JOINED;
    return count;
}

static int open_count(void)
{
    int count = 0;
    for (int i = 0; i < MAX_CONNECTIONS; i++) count += conns[i].state != CONN_FREE;
    return count;
}

/* Heartbeats and liveness on every joined connection. */
static void watch_connections(void)
{
    int64_t now = now_ms();
    for (int i = 0; i < MAX_CONNECTIONS; i++) {
        struct conn *c = &conns[i];
        if (c->state == CONN_REFUSED && now - c->refused_at_ms >= REFUSED_LINGER_MS) close_conn(c, "refused");
        if (c->state != CONN_JOINED) continue;
        if (now - c->last_heard_ms >= timeout_ms) {
            close_conn(c, "declared dead: silent for the timeout");
            continue;
        }
        if (now - c->last_ping_ms >= timeout_ms / PINGS_PER_TIMEOUT) {
            c->last_ping_ms = now;
            frame f = {.kind = FRAME_PING};
            f.frame_u.ping.nonce = ++c->ping_nonce;
            f.frame_u.ping.sent_us = (u_quad_t)now * 1000;
            send_frame(c, &f);
        }
    }
}

/* Decodes a frame record; false (and the connection closed) when malformed. */
static bool decode_frame(struct conn *c, const unsigned char *record, u_int length, frame *f)
{
    memset(f, 0, sizeof *f);
    if (!decode_exact((codec_fn)xdr_frame, f, record, length)) {
        close_conn(c, "malformed frame");
        return false;
    }
    if (f->kind != FRAME_FOOT && length > MAX_CONTROL_RECORD_BYTES) {
        xdr_free((xdrproc_t)xdr_frame, (char *)f);
        close_conn(c, "control frame above MAX_CONTROL_RECORD_BYTES");
        return false;
    }
    return true;
}

/*
 * One line: "peer ROLE: stats: connections joined N; feet per connection A,B,...;
 * pings answered N; pongs received N; connections lost N".
 */
static void print_stats(void)
{
    fprintf(stderr, "peer %s: stats: connections joined %" PRIu64 "; feet per connection ", role,
            (uint64_t)stats.connections_joined);
    u_int last = 0;
    for (u_int i = 0; i < MAX_COUNTED_CONNECTIONS; i++) {
        if (stats.feet_by_conn[i] > 0) last = i;
    }
    for (u_int i = 1; i <= last; i++) fprintf(stderr, "%s%" PRIu64, i > 1 ? "," : "", (uint64_t)stats.feet_by_conn[i]);
    fprintf(stderr, "; pings answered %" PRIu64 "; pongs received %" PRIu64 "; connections lost %" PRIu64 "\n",
            (uint64_t)stats.pings_answered, (uint64_t)stats.pongs_received, (uint64_t)stats.connections_lost);
}

/* ---- receiver --------------------------------------------------------------------- */

struct held_foot {
    bool present;
    u_quad_t id, offset;
    u_int length;
    uint64_t checksum;
    char *payload;
    u_int conn_id;
};

static struct {
    bool started, complete;
    u_quad_t session_id, nonce;
    u_int foot_bytes, window;
    u_quad_t delivered_below, bytes_written;
    uint64_t digest;
    struct held_foot *held;
    u_quad_t *failure_ids;
    int *failures;
    bool have_end;
    end_of_stream end;
    int linger_exit; /* >= 0: the session is over; exit with this once the transmitter hangs up */
    int64_t linger_until_ms;
} rx = {.window = DEFAULT_WINDOW_FEET, .linger_exit = -1};

static void rx_linger(int code)
{
    rx.linger_exit = code;
    rx.linger_until_ms = now_ms() + LINGER_MS;
}

/* Ends the session: every connection hears why, then we wait for the transmitter to hang up. */
static void rx_fail(int code, abort_code why, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void rx_fail(int code, abort_code why, const char *fmt, ...)
{
    if (rx.linger_exit >= 0) return;
    char text[MAX_TEXT_BYTES + 1];
    va_list args;
    va_start(args, fmt);
    vsnprintf(text, sizeof text, fmt, args);
    va_end(args);
    fprintf(stderr, "peer rx: %s\n", text);
    rx_linger(code); /* over first, as in rx_check_complete */
    for (int i = 0; i < MAX_CONNECTIONS; i++) {
        if (conns[i].state == CONN_JOINED) send_abort(&conns[i], why, text);
    }
}

static struct conn *conn_by_id(u_int id)
{
    for (int i = 0; i < MAX_CONNECTIONS; i++) {
        if (conns[i].state == CONN_JOINED && conns[i].id == id) return &conns[i];
    }
    for (int i = 0; i < MAX_CONNECTIONS; i++) {
        if (conns[i].state == CONN_JOINED) return &conns[i];
    }
    return NULL;
}

static void rx_refuse(struct conn *c, refuse_reason reason, const char *text)
{
    hello_reply reply = {.status = HELLO_REFUSE};
    reply.hello_reply_u.refused.reason = reason;
    reply.hello_reply_u.refused.receiver_version = version_1_only ? VM_PROTOCOL_VERSION : VM_PROTOCOL_VERSION_2;
    reply.hello_reply_u.refused.text = (char *)text;
    fprintf(stderr, "peer rx: refused connection %u: %s\n", c->id, text);
    send_record(c, (codec_fn)xdr_hello_reply, &reply, MAX_HELLO_RECORD_BYTES);
    if (c->state == CONN_FREE) return;
    c->state = CONN_REFUSED;
    c->refused_at_ms = now_ms();
    if (!has_output(c)) shutdown(c->fd, SHUT_WR);
}

/* The pretend command's verdict, where CAP_VERDICT was echoed: it precedes the confirmation. */
static void rx_send_verdict(struct conn *c)
{
    frame f = {.kind = FRAME_VERDICT};
    consumer_verdict *v = &f.frame_u.verdict;
    v->command = "peer-consumer";
    v->consumer.state = pretend.state;
    if (pretend.state == CONSUMER_EXITED) v->consumer.consumer_status_u.exit_code = pretend.exit_code;
    else if (pretend.state == CONSUMER_SIGNALLED) v->consumer.consumer_status_u.signal_name = (char *)pretend.signal_name;
    size_t tail = strlen(pretend.stderr_text);
    size_t skip = tail > MAX_STDERR_TAIL_BYTES ? tail - MAX_STDERR_TAIL_BYTES : 0;
    v->stderr_tail.stderr_tail_len = (u_int)(tail - skip);
    v->stderr_tail.stderr_tail_val = (char *)pretend.stderr_text + skip;
    send_frame(c, &f);
    fprintf(stderr, "peer rx: sent the verdict on connection %u\n", c->id);
}

static void rx_send_confirm(struct conn *c)
{
    if (c->caps & CAP_VERDICT) rx_send_verdict(c);
    frame f = {.kind = FRAME_CONFIRM};
    f.frame_u.confirm.total_feet = rx.end.total_feet;
    f.frame_u.confirm.total_bytes = rx.end.total_bytes;
    f.frame_u.confirm.digest = rx.end.digest;
    send_frame(c, &f);
}

static void rx_hello(struct conn *c, const unsigned char *record, u_int length)
{
    /* Magic and version come first, so another version's hello is refused for its version. */
    u_int magic = 0, version = 0;
    XDR xdrs;
    xdrmem_create(&xdrs, (char *)record, length, XDR_DECODE);
    bool words = xdr_u_int(&xdrs, &magic) && xdr_u_int(&xdrs, &version);
    xdr_destroy(&xdrs);
    if (!words || magic != VM_MAGIC) return rx_refuse(c, REFUSE_BAD_MAGIC, "not a viamillipede hello");
    bool labelled = version == VM_PROTOCOL_VERSION_2 && !version_1_only;
    if (version != VM_PROTOCOL_VERSION && !labelled) {
        char text[128];
        if (version_1_only) {
            snprintf(text, sizeof text, "protocol version %u is not supported; this receiver speaks version %u", version,
                     VM_PROTOCOL_VERSION);
        } else {
            snprintf(text, sizeof text, "protocol version %u is not supported; this receiver speaks versions %u and %u",
                     version, VM_PROTOCOL_VERSION, VM_PROTOCOL_VERSION_2);
        }
        return rx_refuse(c, REFUSE_VERSION, text);
    }
    /* A version 1 hello is decoded into the base of a version 2 one: the same fields, no label. */
    hello_v2 h2;
    memset(&h2, 0, sizeof h2);
    hello *h = &h2.base;
    codec_fn codec = labelled ? (codec_fn)xdr_hello_v2 : (codec_fn)xdr_hello;
    void *decoded = labelled ? (void *)&h2 : (void *)h;
    if (!decode_exact(codec, decoded, record, length)) return rx_refuse(c, REFUSE_BAD_MAGIC, "malformed hello");
    const char *refusal = NULL;
    refuse_reason reason = REFUSE_BAD_MAGIC;
    if (labelled && !label_ok(h2.label)) {
        refusal = "malformed hello: a label may hold only letters, digits and . _ : -";
    } else if (h->foot_bytes < MIN_FOOT_BYTES || h->foot_bytes > MAX_FOOT_BYTES) {
        reason = REFUSE_FOOT_SIZE, refusal = "foot size outside MIN_FOOT_BYTES..MAX_FOOT_BYTES";
    } else if (strcmp(h->checkphrase, checkphrase) != 0) {
        reason = REFUSE_CHECKPHRASE, refusal = "checkphrase mismatch";
    } else if (rx.started && h->session_id != rx.session_id) {
        reason = rx.linger_exit < 0 ? REFUSE_SESSION_BUSY : REFUSE_SESSION_OVER;
        refusal = "this receiver is busy with another transfer";
    } else if (rx.started && h->foot_bytes != rx.foot_bytes) {
        reason = REFUSE_FOOT_SIZE, refusal = "foot size differs from the session's";
    } else if (rx.linger_exit >= 0 && !rx.complete) {
        reason = REFUSE_SESSION_OVER, refusal = "this transfer has ended";
    }
    if (refusal != NULL) {
        xdr_free((xdrproc_t)codec, (char *)decoded);
        return rx_refuse(c, reason, refusal);
    }
    if (!rx.started) {
        rx.started = true;
        rx.session_id = h->session_id;
        rx.foot_bytes = h->foot_bytes;
        rx.nonce = random64();
        rx.held = calloc(rx.window, sizeof *rx.held);
        rx.failure_ids = calloc(rx.window, sizeof *rx.failure_ids);
        rx.failures = calloc(rx.window, sizeof *rx.failures);
        if (rx.held == NULL || rx.failure_ids == NULL || rx.failures == NULL) die(EXIT_INTERNAL, "out of memory");
        debug("session %016" PRIx64 ": foot size %u", (uint64_t)h->session_id, h->foot_bytes);
    }
    debug("connection %u (tx %u) joined", c->id, h->connection_id);
    if (labelled) fprintf(stderr, "peer rx: connection %u: label %s\n", c->id, h2.label);
    /* What we take of what was offered: a version 1 receiver took none of these. */
    u_int spoken = version_1_only ? CAP_NONE : CAP_PRODUCER_FAILED | (pretend.given ? CAP_VERDICT : 0);
    c->caps = h->capabilities & spoken;
    xdr_free((xdrproc_t)codec, (char *)decoded);
    hello_reply reply = {.status = HELLO_ACCEPT};
    reply.hello_reply_u.accepted.receiver_nonce = rx.nonce;
    reply.hello_reply_u.accepted.delivered_below = rx.delivered_below;
    reply.hello_reply_u.accepted.window_end = rx.delivered_below + rx.window;
    reply.hello_reply_u.accepted.capabilities = c->caps;
    send_record(c, (codec_fn)xdr_hello_reply, &reply, MAX_HELLO_RECORD_BYTES);
    if (c->state == CONN_FREE) return;
    c->state = CONN_JOINED;
    stats.connections_joined++;
    c->max_record_bytes = rx.foot_bytes + FOOT_RECORD_OVERHEAD_BYTES;
    /* A transmitter that lost every connection just before the confirmation comes back for it. */
    if (rx.complete) rx_send_confirm(c);
}

static void rx_check_complete(void)
{
    if (rx.linger_exit >= 0 || !rx.have_end || rx.delivered_below != rx.end.total_feet) return;
    if (rx.bytes_written != rx.end.total_bytes) {
        return rx_fail(EXIT_INTEGRITY, ABORT_INTEGRITY, "wrote %" PRIu64 " bytes but the transmitter sent %" PRIu64,
                       (uint64_t)rx.bytes_written, (uint64_t)rx.end.total_bytes);
    }
    if (rx.end.digest.kind != DIGEST_XXH3_CHAIN || rx.end.digest.stream_digest_u.xxh3_chain != rx.digest) {
        return rx_fail(EXIT_INTEGRITY, ABORT_INTEGRITY, "the stream digest does not match");
    }
    rx.complete = true;
    debug("stream complete: %" PRIu64 " feet, %" PRIu64 " bytes", (uint64_t)rx.end.total_feet,
          (uint64_t)rx.end.total_bytes);
    /* Over before the confirmations go out: a fast transmitter may hang up (even reset) the other
       connections as soon as the first one is confirmed, while we are still writing the rest. */
    rx_linger(EXIT_OK);
    for (int i = 0; i < MAX_CONNECTIONS; i++) {
        if (conns[i].state == CONN_JOINED) rx_send_confirm(&conns[i]);
    }
}

static bool write_all(int fd, const char *bytes, size_t count)
{
    while (count > 0) {
        ssize_t n = write(fd, bytes, count);
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        bytes += n;
        count -= (size_t)n;
    }
    return true;
}

/* Writes held feet to stdout in id order; each write sends window credit back. */
static void rx_write_in_order(void)
{
    for (;;) {
        struct held_foot *h = &rx.held[rx.delivered_below % rx.window];
        if (!h->present || h->id != rx.delivered_below || rx.linger_exit >= 0 || !paced()) break;
        if (h->offset != rx.bytes_written) {
            return rx_fail(EXIT_INTEGRITY, ABORT_INTEGRITY, "foot %" PRIu64 " claims offset %" PRIu64 " but the stream is at %" PRIu64,
                           (uint64_t)h->id, (uint64_t)h->offset, (uint64_t)rx.bytes_written);
        }
        if (!write_all(STDOUT_FILENO, h->payload, h->length)) {
            return rx_fail(EXIT_OUTPUT_CLOSED, ABORT_OUTPUT_CLOSED, "stdout: %s", strerror(errno));
        }
        rx.digest = digest_next(rx.digest, h->checksum, h->length);
        rx.bytes_written += h->length;
        rx.delivered_below++;
        free(h->payload);
        u_int conn_id = h->conn_id;
        memset(h, 0, sizeof *h);
        struct conn *c = conn_by_id(conn_id);
        if (c != NULL) {
            frame f = {.kind = FRAME_CREDIT};
            f.frame_u.credit.window_end = rx.delivered_below + rx.window;
            send_frame(c, &f);
        }
    }
    rx_check_complete();
}

static void rx_ack(struct conn *c, u_quad_t id)
{
    frame f = {.kind = FRAME_ACK};
    f.frame_u.ack.delivered_below = rx.delivered_below;
    f.frame_u.ack.received.received_len = 1;
    f.frame_u.ack.received.received_val = &id;
    send_frame(c, &f);
}

/* Takes ownership of the foot's payload. */
static void rx_foot(struct conn *c, foot *ft)
{
    foot_header *h = &ft->header;
    u_quad_t id = h->foot_id;
    u_int payload_bytes = ft->payload.payload_len;
    uint64_t sum = foot_checksum(id, h->stream_offset, ft->payload.payload_val, payload_bytes, h->length);
    /* The checksum comes first: it covers the header, so damage is repaired, not judged. */
    if (h->sum.kind == CHECKSUM_XXH3_64 && h->sum.checksum_u.xxh3 != sum) {
        u_int slot = (u_int)(id % rx.window);
        if (rx.failure_ids[slot] != id) rx.failure_ids[slot] = id, rx.failures[slot] = 0;
        if (++rx.failures[slot] > MAX_CHECKSUM_FAILURES_PER_FOOT) {
            return rx_fail(EXIT_INTEGRITY, ABORT_INTEGRITY, "foot %" PRIu64 " failed its checksum %d times", (uint64_t)id,
                           rx.failures[slot]);
        }
        fprintf(stderr, "peer rx: foot %" PRIu64 " failed its checksum; asking for it again\n", (uint64_t)id);
        frame f = {.kind = FRAME_RETRANSMIT};
        f.frame_u.retransmit.reason = RETRANSMIT_CHECKSUM;
        f.frame_u.retransmit.foot_ids.foot_ids_len = 1;
        f.frame_u.retransmit.foot_ids.foot_ids_val = &id;
        return send_frame(c, &f);
    }
    if (h->length != payload_bytes || payload_bytes > rx.foot_bytes || payload_bytes == 0) {
        return rx_fail(EXIT_PROTOCOL, ABORT_PROTOCOL, "foot %" PRIu64 ": length %u does not fit payload %u", (uint64_t)id,
                       h->length, payload_bytes);
    }
    if (rx.have_end && id >= rx.end.total_feet) {
        return rx_fail(EXIT_PROTOCOL, ABORT_PROTOCOL, "foot %" PRIu64 " is beyond the announced end", (uint64_t)id);
    }
    if (id >= rx.delivered_below + rx.window) {
        return rx_fail(EXIT_PROTOCOL, ABORT_PROTOCOL, "foot %" PRIu64 " is outside the window", (uint64_t)id);
    }
    struct held_foot *slot = &rx.held[id % rx.window];
    bool duplicate = id < rx.delivered_below || slot->present;
    if (!duplicate) {
        slot->present = true;
        slot->id = id;
        slot->offset = h->stream_offset;
        slot->length = payload_bytes;
        slot->checksum = sum;
        slot->payload = ft->payload.payload_val;
        slot->conn_id = c->id;
        count_foot(c->id);
        ft->payload.payload_val = NULL;
        ft->payload.payload_len = 0;
    }
    rx_ack(c, id);
    if (!duplicate) rx_write_in_order();
}

static void rx_end(end_of_stream *end)
{
    if (rx.have_end) {
        bool same = rx.end.total_feet == end->total_feet && rx.end.total_bytes == end->total_bytes &&
                    rx.end.digest.kind == end->digest.kind &&
                    rx.end.digest.stream_digest_u.xxh3_chain == end->digest.stream_digest_u.xxh3_chain;
        if (!same) rx_fail(EXIT_PROTOCOL, ABORT_PROTOCOL, "transmitter announced two different ends of stream");
        return;
    }
    if (end->total_feet < rx.delivered_below) {
        return rx_fail(EXIT_PROTOCOL, ABORT_PROTOCOL, "end of stream below what is already written");
    }
    rx.have_end = true;
    rx.end = *end;
    debug("end of stream announced: %" PRIu64 " feet, %" PRIu64 " bytes", (uint64_t)end->total_feet,
          (uint64_t)end->total_bytes);
    rx_check_complete();
}

static void rx_record(struct conn *c, const unsigned char *record, u_int length)
{
    if (c->state == CONN_AWAIT_HELLO) return rx_hello(c, record, length);
    frame f;
    if (!decode_frame(c, record, length, &f)) return;
    if (f.kind == FRAME_PING) {
        frame pong = {.kind = FRAME_PONG};
        pong.frame_u.pong = f.frame_u.ping;
        send_frame(c, &pong);
        stats.pings_answered++;
    } else if (f.kind == FRAME_PONG) {
        stats.pongs_received++; /* its arrival is the proof of life */
    } else if (rx.linger_exit >= 0) {
        /* after the end, stragglers are ignored */
    } else if (f.kind == FRAME_FOOT) {
        rx_foot(c, &f.frame_u.foot);
    } else if (f.kind == FRAME_END) {
        rx_end(&f.frame_u.end);
    } else if (f.kind == FRAME_ABORT) {
        fprintf(stderr, "peer rx: transmitter aborted (code %d): %s\n", f.frame_u.abort.code, f.frame_u.abort.text);
        rx_linger(EXIT_PEER_LOST);
        /* The transmitter has said its last word: hang up, so it need not wait for us. */
        for (int i = 0; i < MAX_CONNECTIONS; i++) close_conn(&conns[i], "the transmitter aborted");
    } else {
        rx_fail(EXIT_PROTOCOL, ABORT_PROTOCOL, "transmitter sent a frame only a receiver sends (kind %d)", f.kind);
    }
    xdr_free((xdrproc_t)xdr_frame, (char *)&f);
}

static void rx_accept(void)
{
    for (;;) {
        int fd = accept(listen_fd, NULL, NULL);
        if (fd < 0) return;
        if (add_conn(fd, CONN_AWAIT_HELLO, MAX_HELLO_RECORD_BYTES) == NULL) {
            fprintf(stderr, "peer rx: more than %d connections; closing one\n", MAX_CONNECTIONS);
            close(fd);
        }
    }
}

static void rx_listen(void)
{
    listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof addr;
    if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(listen_fd, 16) < 0 ||
        getsockname(listen_fd, (struct sockaddr *)&addr, &size) < 0) {
        die(8, "cannot listen on 127.0.0.1: %s", strerror(errno));
    }
    set_nonblocking(listen_fd);
    fprintf(stderr, "peer: listening on port %u\n", ntohs(addr.sin_port));
}

static void rx_tick(void)
{
    if (rx.linger_exit < 0 && rx.started) rx_write_in_order(); /* feet held back by the pace */
    if (rx.linger_exit >= 0 && (open_count() == 0 || now_ms() >= rx.linger_until_ms)) {
        for (int i = 0; i < MAX_CONNECTIONS; i++) close_conn(&conns[i], "session over");
        if (rx.linger_exit == EXIT_OK) print_stats();
        exit(rx.linger_exit);
    }
}

/* ---- transmitter ------------------------------------------------------------------ */

struct out_foot {
    bool held, pending;
    int conn;  /* index into conns of the last copy sent, -1 for none */
    int sends;
    u_quad_t id, offset;
    u_int length;
    uint64_t checksum;
    char *payload;
};

static struct {
    u_quad_t session_id, nonce;
    bool have_nonce;
    u_int foot_bytes;
    u_quad_t window_end;
    u_quad_t base, next_id, next_offset; /* base: oldest foot still held */
    struct out_foot feet[TX_HELD_FEET];
    uint64_t digest;
    bool eof;
    end_of_stream end;
    bool have_verdict, verdict_ok;
    char verdict[MAX_TEXT_BYTES + 64];
} tx = {.foot_bytes = 2 * 1024 * 1024};

static void tx_fail(int code, abort_code why, const char *fmt, ...) __attribute__((noreturn, format(printf, 3, 4)));
static void tx_fail(int code, abort_code why, const char *fmt, ...)
{
    char text[MAX_TEXT_BYTES + 1];
    va_list args;
    va_start(args, fmt);
    vsnprintf(text, sizeof text, fmt, args);
    va_end(args);
    finished = true;
    for (int i = 0; i < MAX_CONNECTIONS; i++) {
        struct conn *c = &conns[i];
        if (c->state != CONN_JOINED) continue;
        /* A receiver that did not echo CAP_PRODUCER_FAILED cannot decode that code; ABORT_INPUT it knows. */
        bool known = why != ABORT_PRODUCER_FAILED || (c->caps & CAP_PRODUCER_FAILED);
        send_abort(c, known ? why : ABORT_INPUT, text);
        if (why == ABORT_PRODUCER_FAILED) {
            fprintf(stderr, "peer tx: told connection %u: %s\n", c->id, known ? "ABORT_PRODUCER_FAILED" : "ABORT_INPUT");
        }
        /* Best effort: give the notice a moment to leave before the process does. */
        int64_t until = now_ms() + 1000;
        while (c->state == CONN_JOINED && has_output(c) && now_ms() < until) {
            struct pollfd p = {.fd = c->fd, .events = POLLOUT};
            poll(&p, 1, 100);
            flush(c);
        }
        /* Then hang up our side and read what the receiver still sends until it hangs up too: closing
           with unread bytes would reset the connection, and a reset can drop the notice unread. */
        if (c->state != CONN_JOINED || has_output(c)) continue;
        shutdown(c->fd, SHUT_WR);
        while (now_ms() < until) {
            struct pollfd p = {.fd = c->fd, .events = POLLIN};
            char sink[READ_CHUNK_BYTES];
            if (poll(&p, 1, 100) > 0 && read(c->fd, sink, sizeof sink) <= 0) break;
        }
    }
    die(code, "%s", text);
}

static void tx_release(struct out_foot *f)
{
    if (f->conn >= 0) conns[f->conn].carried--;
    free(f->payload);
    memset(f, 0, sizeof *f);
    f->conn = -1;
}

static void tx_acknowledge(u_quad_t delivered_below, const u_quad_t *ids, u_int count)
{
    for (u_quad_t id = tx.base; id < tx.next_id; id++) {
        struct out_foot *f = &tx.feet[id % TX_HELD_FEET];
        if (!f->held || f->id != id) continue;
        bool acked = id < delivered_below;
        for (u_int i = 0; i < count && !acked; i++) acked = ids[i] == id;
        if (acked) tx_release(f);
    }
    while (tx.base < tx.next_id && !tx.feet[tx.base % TX_HELD_FEET].held) tx.base++;
}

/* Reads stdin into feet while the window and our own holding limit allow. */
static void tx_read(void)
{
    while (!tx.eof && tx.next_id < tx.window_end && tx.next_id - tx.base < TX_HELD_FEET) {
        char *payload = xmalloc(tx.foot_bytes);
        u_int filled = 0;
        while (filled < tx.foot_bytes) {
            ssize_t n = read(STDIN_FILENO, payload + filled, tx.foot_bytes - filled);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) tx_fail(EXIT_INPUT, ABORT_INPUT, "reading stdin: %s", strerror(errno));
            if (n == 0) {
                tx.eof = true;
                break;
            }
            filled += (u_int)n;
        }
        if (filled == 0) {
            free(payload);
            break;
        }
        struct out_foot *f = &tx.feet[tx.next_id % TX_HELD_FEET];
        f->held = f->pending = true;
        f->conn = -1;
        f->sends = 0;
        f->id = tx.next_id;
        f->offset = tx.next_offset;
        f->length = filled;
        f->payload = payload;
        f->checksum = foot_checksum(f->id, f->offset, payload, filled, filled);
        tx.digest = digest_next(tx.digest, f->checksum, filled);
        tx.next_id++;
        tx.next_offset += filled;
    }
    if (tx.eof && tx.end.digest.kind == 0) {
        tx.end.total_feet = tx.next_id;
        tx.end.total_bytes = tx.next_offset;
        tx.end.digest.kind = DIGEST_XXH3_CHAIN;
        tx.end.digest.stream_digest_u.xxh3_chain = tx.digest;
        debug("end of input: %" PRIu64 " feet, %" PRIu64 " bytes", (uint64_t)tx.next_id, (uint64_t)tx.next_offset);
    }
}

/* Hands pending feet to idle connections (round robin), then end-of-stream to every connection. */
static void tx_pump(void)
{
    static int turn;
    /* Every connection finishes its handshake first, so the feet spread over all of them. */
    for (int i = 0; i < MAX_CONNECTIONS; i++) {
        if (conns[i].state == CONN_HELLO_SENT) return;
    }
    for (u_quad_t id = tx.base; id < tx.next_id; id++) {
        struct out_foot *f = &tx.feet[id % TX_HELD_FEET];
        if (!f->held || !f->pending) continue;
        if (pace_ms > 0 && now_ms() - last_paced_ms < pace_ms) break;
        int chosen = -1;
        for (int k = 0; k < MAX_CONNECTIONS && chosen < 0; k++) {
            int i = (turn + k) % MAX_CONNECTIONS;
            struct conn *c = &conns[i];
            if (c->state == CONN_JOINED && !has_output(c) && c->carried < MAX_FEET_PER_CONNECTION) chosen = i;
        }
        if (chosen < 0) break;
        turn = chosen + 1;
        frame fr = {.kind = FRAME_FOOT};
        foot *ft = &fr.frame_u.foot;
        ft->header.foot_id = f->id;
        ft->header.stream_offset = f->offset;
        ft->header.length = f->length;
        ft->header.sum.kind = CHECKSUM_XXH3_64;
        ft->header.sum.checksum_u.xxh3 = f->checksum;
        ft->header.flags = f->sends > 0 ? FOOT_FLAG_RETRANSMIT : 0;
        ft->payload.payload_len = f->length;
        ft->payload.payload_val = f->payload;
        if (f->conn >= 0) conns[f->conn].carried--;
        f->conn = chosen;
        f->pending = false;
        f->sends++;
        conns[chosen].carried++;
        count_foot(conns[chosen].id);
        last_paced_ms = now_ms();
        send_frame(&conns[chosen], &fr);
    }
    if (tx.end.digest.kind != DIGEST_XXH3_CHAIN) return;
    if (producer_fails) {
        tx_fail(EXIT_INPUT, ABORT_PRODUCER_FAILED, "producer exited 1 after %" PRIu64 " bytes", (uint64_t)tx.end.total_bytes);
    }
    for (int i = 0; i < MAX_CONNECTIONS; i++) {
        struct conn *c = &conns[i];
        if (c->state != CONN_JOINED || c->end_sent) continue;
        c->end_sent = true;
        frame fr = {.kind = FRAME_END};
        fr.frame_u.end = tx.end;
        send_frame(c, &fr);
    }
}

static void tx_hello_reply(struct conn *c, const unsigned char *record, u_int length)
{
    hello_reply reply;
    memset(&reply, 0, sizeof reply);
    if (!decode_exact((codec_fn)xdr_hello_reply, &reply, record, length)) {
        die(EXIT_PROTOCOL, "connection %u: not a viamillipede receiver (malformed hello_reply)", c->id);
    }
    if (reply.status == HELLO_REFUSE) {
        die(EXIT_REFUSED, "receiver refused connection %u: reason %d: %s", c->id, reply.hello_reply_u.refused.reason,
            reply.hello_reply_u.refused.text);
    }
    welcome *w = &reply.hello_reply_u.accepted;
    if (tx.have_nonce && w->receiver_nonce != tx.nonce) {
        tx_fail(EXIT_PEER_LOST, ABORT_PROTOCOL, "the receiver restarted and lost the stream");
    }
    tx.have_nonce = true;
    tx.nonce = w->receiver_nonce;
    c->caps = w->capabilities;
    c->state = CONN_JOINED;
    stats.connections_joined++;
    c->max_record_bytes = MAX_CONTROL_RECORD_BYTES;
    debug("connection %u joined: window below %" PRIu64, c->id, (uint64_t)w->window_end);
    if (w->window_end > tx.window_end) tx.window_end = w->window_end;
    tx_acknowledge(w->delivered_below, NULL, 0);
    xdr_free((xdrproc_t)xdr_hello_reply, (char *)&reply);
    tx_read();
    tx_pump();
}

static void tx_record(struct conn *c, const unsigned char *record, u_int length)
{
    if (c->state == CONN_HELLO_SENT) return tx_hello_reply(c, record, length);
    frame f;
    if (!decode_frame(c, record, length, &f)) return;
    switch (f.kind) {
    case FRAME_PING: {
        frame pong = {.kind = FRAME_PONG};
        pong.frame_u.pong = f.frame_u.ping;
        send_frame(c, &pong);
        stats.pings_answered++;
        break;
    }
    case FRAME_PONG:
        stats.pongs_received++;
        break;
    case FRAME_ACK:
        tx_acknowledge(f.frame_u.ack.delivered_below, f.frame_u.ack.received.received_val,
                       f.frame_u.ack.received.received_len);
        break;
    case FRAME_CREDIT:
        if (f.frame_u.credit.window_end > tx.window_end) tx.window_end = f.frame_u.credit.window_end;
        break;
    case FRAME_RETRANSMIT:
        for (u_int i = 0; i < f.frame_u.retransmit.foot_ids.foot_ids_len; i++) {
            u_quad_t id = f.frame_u.retransmit.foot_ids.foot_ids_val[i];
            struct out_foot *o = &tx.feet[id % TX_HELD_FEET];
            if (o->held && o->id == id) o->pending = true;
        }
        fprintf(stderr, "peer tx: receiver asked for %u feet again (reason %d)\n",
                f.frame_u.retransmit.foot_ids.foot_ids_len, f.frame_u.retransmit.reason);
        break;
    case FRAME_VERDICT: {
        if (!(c->caps & CAP_VERDICT)) tx_fail(EXIT_PROTOCOL, ABORT_PROTOCOL, "receiver sent a verdict it did not promise");
        if (tx.have_verdict) break;
        const consumer_verdict *v = &f.frame_u.verdict;
        tx.have_verdict = true;
        tx.verdict_ok = v->consumer.state == CONSUMER_EXITED && v->consumer.consumer_status_u.exit_code == 0;
        int n = snprintf(tx.verdict, sizeof tx.verdict, "'%s' ", v->command);
        if (v->consumer.state == CONSUMER_EXITED) {
            snprintf(tx.verdict + n, sizeof tx.verdict - n, "exited %u", v->consumer.consumer_status_u.exit_code);
        } else if (v->consumer.state == CONSUMER_SIGNALLED) {
            snprintf(tx.verdict + n, sizeof tx.verdict - n, "was killed by %s", v->consumer.consumer_status_u.signal_name);
        } else {
            snprintf(tx.verdict + n, sizeof tx.verdict - n, "could not be started");
        }
        size_t len = strlen(tx.verdict);
        snprintf(tx.verdict + len, sizeof tx.verdict - len, " (stderr tail %u bytes)", v->stderr_tail.stderr_tail_len);
        break;
    }
    case FRAME_CONFIRM: {
        stream_confirm *k = &f.frame_u.confirm;
        if (tx.end.digest.kind != DIGEST_XXH3_CHAIN || k->total_feet != tx.end.total_feet ||
            k->total_bytes != tx.end.total_bytes ||
            k->digest.stream_digest_u.xxh3_chain != tx.end.digest.stream_digest_u.xxh3_chain) {
            tx_fail(EXIT_INTEGRITY, ABORT_INTEGRITY, "receiver confirmed a stream that differs from what was sent");
        }
        if ((c->caps & CAP_VERDICT) && !tx.have_verdict) {
            tx_fail(EXIT_PROTOCOL, ABORT_PROTOCOL, "receiver confirmed without the verdict it promised");
        }
        finished = true;
        fprintf(stderr, "peer tx: verdict: %s\n", tx.have_verdict ? tx.verdict : "none (CAP_VERDICT not echoed)");
        if (tx.have_verdict && !tx.verdict_ok) {
            for (int i = 0; i < MAX_CONNECTIONS; i++) close_conn(&conns[i], "the receiver's command failed");
            die(EXIT_OUTPUT_CLOSED, "the receiver's command failed: %s", tx.verdict);
        }
        print_stats();
        debug("confirmed: %" PRIu64 " feet, %" PRIu64 " bytes", (uint64_t)k->total_feet, (uint64_t)k->total_bytes);
        for (int i = 0; i < MAX_CONNECTIONS; i++) close_conn(&conns[i], "transfer confirmed");
        exit(EXIT_OK);
    }
    case FRAME_ABORT:
        die(EXIT_PEER_LOST, "receiver aborted (code %d): %s", f.frame_u.abort.code, f.frame_u.abort.text);
    default:
        tx_fail(EXIT_PROTOCOL, ABORT_PROTOCOL, "receiver sent a frame only a transmitter sends (kind %d)", f.kind);
    }
    xdr_free((xdrproc_t)xdr_frame, (char *)&f);
    tx_read();
    tx_pump();
}

static void tx_connect(const char *host, u_int port, int count)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) die(EXIT_INTERNAL, "not an IPv4 address: %s", host);
    tx.session_id = random64();
    for (int i = 0; i < count; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
            die(3, "cannot connect to %s:%u: %s", host, port, strerror(errno));
        }
        struct conn *c = add_conn(fd, CONN_HELLO_SENT, MAX_HELLO_RECORD_BYTES);
        hello_v2 h2 = {
            .base =
                {
                    .magic = VM_MAGIC,
                    .protocol_version = label != NULL ? VM_PROTOCOL_VERSION_2 : VM_PROTOCOL_VERSION,
                    .session_id = tx.session_id,
                    .checkphrase = (char *)checkphrase,
                    .foot_bytes = tx.foot_bytes,
                    .capabilities = CAP_VERDICT | CAP_PRODUCER_FAILED,
                    .connection_id = (u_int)i,
                },
            .label = (char *)label,
        };
        if (label != NULL) send_record(c, (codec_fn)xdr_hello_v2, &h2, MAX_HELLO_RECORD_BYTES);
        else send_record(c, (codec_fn)xdr_hello, &h2.base, MAX_HELLO_RECORD_BYTES);
    }
}

/* ---- the event loop ---------------------------------------------------------------- */

/* Connections closing now are expected: rx lingers after the end, tx confirmed or failed. */
static bool session_over(void)
{
    return is_receiver ? rx.linger_exit >= 0 : finished;
}

static void on_record(struct conn *c, const unsigned char *record, u_int length)
{
    if (is_receiver) rx_record(c, record, length);
    else tx_record(c, record, length);
}

static void on_conn_closed(struct conn *c)
{
    if (is_receiver || finished) return; /* rx: the session carries on with the others */
    if (joined_count() == 0) tx_fail(EXIT_PEER_LOST, ABORT_PROTOCOL, "lost every connection to the receiver");
    /* Feet this connection carried go out again on the others. */
    int index = (int)(c - conns);
    for (int i = 0; i < TX_HELD_FEET; i++) {
        struct out_foot *f = &tx.feet[i];
        if (f->held && f->conn == index) f->pending = true, f->conn = -1;
    }
    tx_pump();
}

static void on_conn_idle(struct conn *c)
{
    if (c->state == CONN_REFUSED) shutdown(c->fd, SHUT_WR);
    if (!is_receiver && c->state == CONN_JOINED) tx_pump();
}

static void event_loop(void)
{
    int64_t last_tick = now_ms();
    for (;;) {
        struct pollfd fds[MAX_CONNECTIONS + 1];
        struct conn *owners[MAX_CONNECTIONS + 1];
        nfds_t n = 0;
        if (listen_fd >= 0) fds[n] = (struct pollfd){.fd = listen_fd, .events = POLLIN}, owners[n++] = NULL;
        for (int i = 0; i < MAX_CONNECTIONS; i++) {
            struct conn *c = &conns[i];
            if (c->state == CONN_FREE) continue;
            fds[n] = (struct pollfd){.fd = c->fd, .events = POLLIN | (has_output(c) ? POLLOUT : 0)};
            owners[n++] = c;
        }
        if (poll(fds, n, TICK_MS) < 0 && errno != EINTR) die(EXIT_INTERNAL, "poll: %s", strerror(errno));
        for (nfds_t k = 0; k < n; k++) {
            struct conn *c = owners[k];
            if (c == NULL) {
                if (fds[k].revents & POLLIN) rx_accept();
                continue;
            }
            if (c->state == CONN_FREE || c->fd != fds[k].fd) continue;
            if (fds[k].revents & POLLOUT) {
                flush(c);
                if (c->state != CONN_FREE && !has_output(c)) on_conn_idle(c);
            }
            if (c->state != CONN_FREE && (fds[k].revents & (POLLIN | POLLHUP | POLLERR))) on_readable(c);
        }
        int64_t now = now_ms();
        if (now >= deadline_at_ms) {
            if (is_receiver) {
                rx_fail(EXIT_PEER_LOST, ABORT_INTERRUPTED, "deadline passed");
                exit(EXIT_PEER_LOST);
            }
            tx_fail(EXIT_PEER_LOST, ABORT_INTERRUPTED, "deadline passed");
        }
        if (now - last_tick >= TICK_MS) {
            last_tick = now;
            watch_connections();
            if (is_receiver) {
                rx_tick();
            } else {
                tx_read(); /* feet held back by the pace */
                tx_pump();
            }
        }
        if (is_receiver && rx.linger_exit >= 0) rx_tick();
    }
}

/* ---- golden mode: values as JSON ---------------------------------------------------- */

static void json_u64(const char *name, u_quad_t value)
{
    printf("\"%s\":\"%" PRIu64 "\"", name, (uint64_t)value);
}

static void json_hex(const char *name, const void *bytes, size_t count)
{
    printf("\"%s\":\"", name);
    for (size_t i = 0; i < count; i++) printf("%02x", ((const unsigned char *)bytes)[i]);
    printf("\"");
}

static void json_u64_list(const char *name, const u_quad_t *values, u_int count)
{
    printf("\"%s\":[", name);
    for (u_int i = 0; i < count; i++) printf("%s\"%" PRIu64 "\"", i ? "," : "", (uint64_t)values[i]);
    printf("]");
}

static void json_digest(const stream_digest *d)
{
    printf("\"digest\":{\"kind\":%d,", d->kind);
    json_u64("xxh3_chain", d->stream_digest_u.xxh3_chain);
    printf("}");
}

static void json_heartbeat(const char *name, const heartbeat *h)
{
    printf("\"%s\":{", name);
    json_u64("nonce", h->nonce);
    printf(",");
    json_u64("sent_us", h->sent_us);
    printf("}");
}

static void json_hello(const hello *h)
{
    printf("{\"magic\":%u,\"protocol_version\":%u,", h->magic, h->protocol_version);
    json_u64("session_id", h->session_id);
    printf(",");
    json_hex("checkphrase", h->checkphrase, strlen(h->checkphrase));
    printf(",\"foot_bytes\":%u,\"capabilities\":%u,\"connection_id\":%u}", h->foot_bytes, h->capabilities,
           h->connection_id);
}

static void json_hello_v2(const hello_v2 *h)
{
    printf("{\"base\":");
    json_hello(&h->base);
    printf(",");
    json_hex("label", h->label, strlen(h->label));
    printf("}");
}

static void json_hello_reply(const hello_reply *r)
{
    printf("{\"status\":%d,", r->status);
    if (r->status == HELLO_ACCEPT) {
        const welcome *w = &r->hello_reply_u.accepted;
        printf("\"accepted\":{");
        json_u64("receiver_nonce", w->receiver_nonce);
        printf(",");
        json_u64("delivered_below", w->delivered_below);
        printf(",");
        json_u64("window_end", w->window_end);
        printf(",\"capabilities\":%u}}", w->capabilities);
    } else {
        const refusal *f = &r->hello_reply_u.refused;
        printf("\"refused\":{\"reason\":%d,\"receiver_version\":%u,", f->reason, f->receiver_version);
        json_hex("text", f->text, strlen(f->text));
        printf("}}");
    }
}

static void json_totals(const char *name, u_quad_t feet, u_quad_t bytes, const stream_digest *d)
{
    printf("\"%s\":{", name);
    json_u64("total_feet", feet);
    printf(",");
    json_u64("total_bytes", bytes);
    printf(",");
    json_digest(d);
    printf("}");
}

static void json_frame(const frame *f)
{
    printf("{\"kind\":%d,", f->kind);
    const foot *ft = &f->frame_u.foot;
    switch (f->kind) {
    case FRAME_FOOT:
        printf("\"foot\":{\"header\":{");
        json_u64("foot_id", ft->header.foot_id);
        printf(",");
        json_u64("stream_offset", ft->header.stream_offset);
        printf(",\"length\":%u,\"sum\":{\"kind\":%d", ft->header.length, ft->header.sum.kind);
        if (ft->header.sum.kind == CHECKSUM_XXH3_64) {
            printf(",");
            json_u64("xxh3", ft->header.sum.checksum_u.xxh3);
        }
        printf("},\"flags\":%u},", ft->header.flags);
        json_hex("payload", ft->payload.payload_val, ft->payload.payload_len);
        printf("}");
        break;
    case FRAME_END:
        json_totals("end", f->frame_u.end.total_feet, f->frame_u.end.total_bytes, &f->frame_u.end.digest);
        break;
    case FRAME_ACK:
        printf("\"ack\":{");
        json_u64("delivered_below", f->frame_u.ack.delivered_below);
        printf(",");
        json_u64_list("received", f->frame_u.ack.received.received_val, f->frame_u.ack.received.received_len);
        printf("}");
        break;
    case FRAME_CREDIT:
        printf("\"credit\":{");
        json_u64("window_end", f->frame_u.credit.window_end);
        printf("}");
        break;
    case FRAME_RETRANSMIT:
        printf("\"retransmit\":{\"reason\":%d,", f->frame_u.retransmit.reason);
        json_u64_list("foot_ids", f->frame_u.retransmit.foot_ids.foot_ids_val,
                      f->frame_u.retransmit.foot_ids.foot_ids_len);
        printf("}");
        break;
    case FRAME_CONFIRM:
        json_totals("confirm", f->frame_u.confirm.total_feet, f->frame_u.confirm.total_bytes,
                    &f->frame_u.confirm.digest);
        break;
    case FRAME_PING:
        json_heartbeat("ping", &f->frame_u.ping);
        break;
    case FRAME_PONG:
        json_heartbeat("pong", &f->frame_u.pong);
        break;
    case FRAME_ABORT:
        printf("\"abort\":{\"code\":%d,", f->frame_u.abort.code);
        json_hex("text", f->frame_u.abort.text, strlen(f->frame_u.abort.text));
        printf("}");
        break;
    case FRAME_VERDICT: {
        const consumer_verdict *v = &f->frame_u.verdict;
        printf("\"verdict\":{");
        json_hex("command", v->command, strlen(v->command));
        printf(",\"consumer\":{\"state\":%d", v->consumer.state);
        if (v->consumer.state == CONSUMER_EXITED) {
            printf(",\"exit_code\":%u", v->consumer.consumer_status_u.exit_code);
        } else if (v->consumer.state == CONSUMER_SIGNALLED) {
            printf(",");
            json_hex("signal_name", v->consumer.consumer_status_u.signal_name, strlen(v->consumer.consumer_status_u.signal_name));
        }
        printf("},");
        json_hex("stderr_tail", v->stderr_tail.stderr_tail_val, v->stderr_tail.stderr_tail_len);
        printf("}");
        break;
    }
    }
    printf("}");
}

static int hex_value(int ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

static int golden(void)
{
    char *line = NULL;
    size_t line_capacity = 0;
    ssize_t line_bytes;
    while ((line_bytes = getline(&line, &line_capacity, stdin)) > 0) {
        line[strcspn(line, "\r\n")] = '\0';
        char *hex = strchr(line, ' ');
        const char *schema = line;
        if (hex == NULL) hex = line + strlen(line);
        else *hex++ = '\0';
        size_t hex_bytes = strlen(hex);
        unsigned char *bytes = xmalloc(hex_bytes / 2 + 1);
        u_int length = 0;
        bool hex_ok = hex_bytes % 2 == 0;
        for (size_t i = 0; hex_ok && i < hex_bytes; i += 2) {
            int hi = hex_value(hex[i]), lo = hex_value(hex[i + 1]);
            hex_ok = hi >= 0 && lo >= 0;
            bytes[length++] = (unsigned char)(hi << 4 | lo);
        }
        union {
            hello h;
            hello_v2 h2;
            hello_reply r;
            frame f;
        } value;
        memset(&value, 0, sizeof value);
        codec_fn codec = strcmp(schema, "hello") == 0         ? (codec_fn)xdr_hello
                         : strcmp(schema, "hello_v2") == 0    ? (codec_fn)xdr_hello_v2
                         : strcmp(schema, "hello_reply") == 0 ? (codec_fn)xdr_hello_reply
                         : strcmp(schema, "frame") == 0       ? (codec_fn)xdr_frame
                                                              : NULL;
        if (!hex_ok || codec == NULL) {
            printf("{\"ok\":false,\"error\":\"bad request line\"}\n");
        } else if (!decode_exact(codec, &value, bytes, length)) {
            printf("{\"ok\":false,\"error\":\"not a valid %s encoding\"}\n", schema);
        } else {
            printf("{\"ok\":true,\"value\":");
            if (codec == (codec_fn)xdr_hello) json_hello(&value.h);
            else if (codec == (codec_fn)xdr_hello_v2) json_hello_v2(&value.h2);
            else if (codec == (codec_fn)xdr_hello_reply) json_hello_reply(&value.r);
            else json_frame(&value.f);
            u_int capacity = length + 64;
            unsigned char *encoded = xmalloc(capacity);
            int64_t encoded_bytes = encode_into(codec, &value, encoded, capacity);
            printf(",");
            json_hex("hex", encoded, encoded_bytes < 0 ? 0 : (size_t)encoded_bytes);
            if (codec == (codec_fn)xdr_frame && value.f.kind == FRAME_FOOT) {
                const foot_header *fh = &value.f.frame_u.foot.header;
                const foot *ft = &value.f.frame_u.foot;
                printf(",");
                json_u64("seed", foot_seed(fh->foot_id, fh->stream_offset, fh->length));
                printf(",");
                json_u64("checksum", foot_checksum(fh->foot_id, fh->stream_offset, ft->payload.payload_val,
                                                   ft->payload.payload_len, fh->length));
            }
            printf("}\n");
            free(encoded);
            xdr_free((xdrproc_t)codec, (char *)&value);
        }
        free(bytes);
        fflush(stdout);
    }
    free(line);
    return 0;
}

/* ---- main ---------------------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr,
            "usage: peer rx [-c PHRASE] [-w FEET] [-t TIMEOUT_S] [-d DEADLINE_S] [-v]\n"
            "               [-x EXIT_CODE | -X SIGNAL_NAME] [-e STDERR] [-1]\n"
            "       peer tx HOST PORT [-n CONNECTIONS] [-c PHRASE] [-b FOOT_BYTES] [-f FRAGMENT_BYTES]\n"
            "                         [-t TIMEOUT_S] [-d DEADLINE_S] [-v] [-l LABEL] [-P]\n"
            "       (rx and tx: -p MS moves at most one foot per MS milliseconds)\n"
            "       peer golden | peer info\n");
    exit(EXIT_INTERNAL);
}

static u_int number(const char *text, u_int low, u_int high)
{
    char *end;
    unsigned long value = strtoul(text, &end, 0);
    if (*text == '\0' || *end != '\0' || value < low || value > high) usage();
    return (u_int)value;
}

int main(int argc, char **argv)
{
    if (argc < 2) usage();
    const char *mode = argv[1];
    if (strcmp(mode, "golden") == 0) return golden();
    if (strcmp(mode, "info") == 0) {
        const uint32_t probe = 1;
        printf("{\"byte_order\":\"%s\"}\n", *(const unsigned char *)&probe == 1 ? "little-endian" : "big-endian");
        return 0;
    }
    int first_option = 2;
    const char *host = NULL;
    u_int port = 0;
    if (strcmp(mode, "rx") == 0) {
        is_receiver = true;
        role = "rx";
    } else if (strcmp(mode, "tx") == 0) {
        if (argc < 4) usage();
        role = "tx";
        host = argv[2];
        port = number(argv[3], 1, 65535);
        first_option = 4;
    } else {
        usage();
    }
    int connections = 3;
    u_int deadline_s = 120;
    optind = first_option;
    int option;
    while ((option = getopt(argc, argv, "c:w:n:b:f:p:t:d:vx:X:e:1l:P")) != -1) {
        switch (option) {
        case 'c':
            if (strlen(optarg) > MAX_CHECKPHRASE_BYTES) usage();
            checkphrase = optarg;
            break;
        case 'w': rx.window = number(optarg, 1, MAX_WINDOW_FEET); break;
        case 'n': connections = (int)number(optarg, 1, MAX_CONNECTIONS); break;
        case 'b': tx.foot_bytes = number(optarg, MIN_FOOT_BYTES, MAX_FOOT_BYTES); break;
        case 'f': fragment_bytes = number(optarg, 1, FRAGMENT_LENGTH_MASK); break;
        case 'p': pace_ms = number(optarg, 1, 60000); break;
        case 't': timeout_ms = (int64_t)number(optarg, 1, 3600) * 1000; break;
        case 'd': deadline_s = number(optarg, 1, 86400); break;
        case 'v': verbose = true; break;
        case 'x':
            pretend.given = true, pretend.state = CONSUMER_EXITED;
            pretend.exit_code = number(optarg, 0, 255);
            break;
        case 'X':
            if (strlen(optarg) == 0 || strlen(optarg) > MAX_SIGNAL_NAME_BYTES) usage();
            pretend.given = true, pretend.state = CONSUMER_SIGNALLED, pretend.signal_name = optarg;
            break;
        case 'e': pretend.stderr_text = optarg; break;
        case '1': version_1_only = true; break;
        case 'l':
            if (!label_ok(optarg)) usage();
            label = optarg;
            break;
        case 'P': producer_fails = true; break;
        default: usage();
        }
    }
    if (optind != argc) usage();
    signal(SIGPIPE, SIG_IGN);
    deadline_at_ms = now_ms() + (int64_t)deadline_s * 1000;
    for (int i = 0; i < MAX_CONNECTIONS; i++) conns[i].fd = -1;
    if (is_receiver) {
        rx_listen();
    } else {
        for (int i = 0; i < TX_HELD_FEET; i++) tx.feet[i].conn = -1;
        tx_connect(host, port, connections);
    }
    event_loop();
}
