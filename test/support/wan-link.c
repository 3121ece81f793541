/*
 * wan-link: a long, fat, lossy path between two network namespaces, emulated in user space.
 *
 * The kernels we test on have neither netem nor fq, so delay cannot come from tc. Instead each
 * emulated link is a pair of TUN devices (IFF_TUN | IFF_NO_PI: bare IP packets) that this process
 * creates in its own namespace; the driver (wan-rig.ts) then moves one into each of two namespaces
 * and addresses them as a point-to-point pair. Every packet one side sends is read here and, per
 * direction:
 *
 * 1. dropped at random with probability LOSS (a seeded PRNG per direction, so a run is repeatable
 *    for the same packet sequence);
 * 2. dropped if the bottleneck queue already holds QUEUE_BYTES not yet serialised (tail drop);
 * 3. otherwise serialised at RATE bits/s behind what is queued, held for the one-way DELAY after
 *    its last bit left the bottleneck, and written to the other device.
 *
 * Release times never decrease within a direction (constant delay after a FIFO serialiser), so each
 * direction is one FIFO byte ring; one epoll loop serves every link, sleeping until the earliest
 * release time or the next packet, whichever comes first.
 *
 * Usage: wan-link [--seed N] [--name PREFIX] LINK...
 *   LINK = RATE_BITS_PER_S,ONE_WAY_DELAY_US,LOSS_PROBABILITY,QUEUE_BYTES (both directions alike)
 * stdout, one JSON line each:
 *   {"ready":[["vmwan0","vmwan1"],...]}  once every device exists (first of a pair: forward's source)
 *   {"counters":[{...},...]}             on SIGUSR1, and once more at exit
 * It exits on SIGTERM, SIGINT, SIGHUP or end of stdin (so it cannot outlive the process that
 * started it with a pipe on stdin); its TUN devices vanish with it. Errors: one line on stderr,
 * exit 1 (bad arguments, 2).
 *
 * Build: gcc -O2 -o wan-link wan-link.c (Linux ≥ 5.11 for epoll_pwait2).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_LINKS 16
/* Larger than any packet a TUN device hands us at the MTUs we use. */
#define PACKET_MAX_BYTES 65536
/* Ring record header: release time and length, 16 bytes keeps the payload 8-aligned. */
#define RECORD_HEADER_BYTES 16
#define RECORD_WRAP UINT32_MAX
/* Packets read from one device per wake-up before the others get a turn. */
#define READ_BURST_PACKETS 64
/* Packets due within this much of now are released together: one wake-up instead of several,
   at a cost far below the millisecond we promise for the delay. */
#define RELEASE_SLACK_NS 50000ULL
#define NS_PER_S 1000000000ULL

struct counters {
  uint64_t packets, bytes;                   /* read from the source device */
  uint64_t delivered_packets, delivered_bytes; /* written to the destination device */
  uint64_t lost;                             /* random loss */
  uint64_t queue_drops;                      /* bottleneck queue full */
  uint64_t overflow_drops;                   /* no room in the ring (should stay 0) */
  uint64_t write_errors;                     /* the destination device refused it */
  uint64_t max_queue_bytes;                  /* deepest the bottleneck queue got */
};

struct direction {
  int from_fd, to_fd;
  uint64_t rate_bps, delay_ns, queue_limit_bytes;
  uint64_t loss_threshold; /* a packet is lost when the PRNG's next value is below this */
  uint64_t rng;
  uint64_t free_at_ns; /* when the bottleneck has serialised everything accepted so far */
  uint8_t *ring;
  size_t ring_bytes, head, tail, used;
  struct counters c;
};

struct link {
  char names[2][IFNAMSIZ];
  int fds[2];
  struct direction dir[2]; /* [0]: names[0] → names[1] (forward), [1]: the reverse */
};

static struct link links[MAX_LINKS];
static int link_count;
static uint8_t scratch[PACKET_MAX_BYTES];

static void die(const char *what) {
  fprintf(stderr, "wan-link: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void usage(const char *why) {
  fprintf(stderr, "wan-link: %s\nusage: wan-link [--seed N] [--name PREFIX] RATE_BPS,DELAY_US,LOSS,QUEUE_BYTES...\n", why);
  exit(2);
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* splitmix64: small, fast, and good enough to decide which packets are lost. */
static uint64_t next_random(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static size_t record_bytes(uint32_t len) { return RECORD_HEADER_BYTES + (((size_t)len + 7) & ~(size_t)7); }

/* Appends a packet to the ring; 0 when it does not fit. `used` counts the bytes from head to tail,
   including the unused end of the buffer skipped at a wrap. */
static int ring_push(struct direction *d, const uint8_t *data, uint32_t len, uint64_t release_ns) {
  size_t need = record_bytes(len);
  if (d->used == 0) d->head = d->tail = 0;
  if (d->tail + need > d->ring_bytes) {
    size_t waste = d->ring_bytes - d->tail;
    if (d->used + waste + need > d->ring_bytes) return 0;
    if (waste >= RECORD_HEADER_BYTES) {
      uint32_t wrap = RECORD_WRAP;
      memcpy(d->ring + d->tail + 8, &wrap, sizeof wrap);
    }
    d->used += waste;
    d->tail = 0;
  }
  if (d->used + need > d->ring_bytes) return 0;
  memcpy(d->ring + d->tail, &release_ns, 8);
  memcpy(d->ring + d->tail + 8, &len, 4);
  memcpy(d->ring + d->tail + RECORD_HEADER_BYTES, data, len);
  d->tail += need;
  d->used += need;
  if (d->tail == d->ring_bytes) d->tail = 0;
  return 1;
}

/* The oldest record, past any wrap; NULL when the ring is empty. */
static uint8_t *ring_front(struct direction *d) {
  if (d->used == 0) return NULL;
  uint32_t len;
  if (d->head + RECORD_HEADER_BYTES > d->ring_bytes) {
    d->used -= d->ring_bytes - d->head;
    d->head = 0;
  } else {
    memcpy(&len, d->ring + d->head + 8, 4);
    if (len == RECORD_WRAP) {
      d->used -= d->ring_bytes - d->head;
      d->head = 0;
    }
  }
  return d->ring + d->head;
}

static void ring_pop(struct direction *d, uint32_t len) {
  size_t need = record_bytes(len);
  d->head += need;
  d->used -= need;
  if (d->head == d->ring_bytes) d->head = 0;
}

static uint64_t queued_bytes(const struct direction *d, uint64_t now) {
  if (d->free_at_ns <= now) return 0;
  return (uint64_t)((unsigned __int128)(d->free_at_ns - now) * d->rate_bps / (8 * NS_PER_S));
}

static void on_packet(struct direction *d, const uint8_t *data, uint32_t len, uint64_t now) {
  d->c.packets++;
  d->c.bytes += len;
  if (d->loss_threshold != 0 && next_random(&d->rng) < d->loss_threshold) {
    d->c.lost++;
    return;
  }
  uint64_t queued = queued_bytes(d, now);
  if (queued + len > d->queue_limit_bytes) {
    d->c.queue_drops++;
    return;
  }
  if (queued + len > d->c.max_queue_bytes) d->c.max_queue_bytes = queued + len;
  uint64_t start = d->free_at_ns > now ? d->free_at_ns : now;
  uint64_t done = start + (uint64_t)((unsigned __int128)len * 8 * NS_PER_S / d->rate_bps);
  if (!ring_push(d, data, len, done + d->delay_ns)) {
    d->c.overflow_drops++;
    return;
  }
  d->free_at_ns = done;
}

/* Writes every packet due by `now` (plus the slack); returns the next release time, or 0. */
static uint64_t release_due(struct direction *d, uint64_t now) {
  uint8_t *record;
  while ((record = ring_front(d)) != NULL) {
    uint64_t release_ns;
    uint32_t len;
    memcpy(&release_ns, record, 8);
    memcpy(&len, record + 8, 4);
    if (release_ns > now + RELEASE_SLACK_NS) return release_ns;
    if (write(d->to_fd, record + RECORD_HEADER_BYTES, len) == (ssize_t)len) {
      d->c.delivered_packets++;
      d->c.delivered_bytes += len;
    } else {
      d->c.write_errors++;
    }
    ring_pop(d, len);
  }
  return 0;
}

static void print_counters(void) {
  static const char *names[2] = {"forward", "reverse"};
  printf("{\"counters\":[");
  for (int i = 0; i < link_count; i++) {
    for (int k = 0; k < 2; k++) {
      const struct counters *c = &links[i].dir[k].c;
      printf("%s{\"link\":%d,\"direction\":\"%s\",\"packets\":%llu,\"bytes\":%llu,\"deliveredPackets\":%llu,"
             "\"deliveredBytes\":%llu,\"lost\":%llu,\"queueDrops\":%llu,\"overflowDrops\":%llu,"
             "\"writeErrors\":%llu,\"maxQueueBytes\":%llu}",
             i == 0 && k == 0 ? "" : ",", i + 1, names[k], (unsigned long long)c->packets,
             (unsigned long long)c->bytes, (unsigned long long)c->delivered_packets,
             (unsigned long long)c->delivered_bytes, (unsigned long long)c->lost,
             (unsigned long long)c->queue_drops, (unsigned long long)c->overflow_drops,
             (unsigned long long)c->write_errors, (unsigned long long)c->max_queue_bytes);
    }
  }
  printf("]}\n");
  fflush(stdout);
}

static int open_tun(const char *pattern, char name[IFNAMSIZ]) {
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) die("open /dev/net/tun");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  snprintf(ifr.ifr_name, IFNAMSIZ, "%s", pattern);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) die("TUNSETIFF");
  memcpy(name, ifr.ifr_name, IFNAMSIZ);
  return fd;
}

static uint64_t parse_u64(const char *text, const char *what) {
  char *end;
  errno = 0;
  unsigned long long value = strtoull(text, &end, 10);
  if (errno != 0 || end == text || (*end != '\0' && *end != ',')) {
    char why[128];
    snprintf(why, sizeof why, "bad %s in '%s'", what, text);
    usage(why);
  }
  return value;
}

static void parse_link(const char *spec, uint64_t seed, int index) {
  char copy[256];
  snprintf(copy, sizeof copy, "%s", spec);
  char *fields[4];
  char *rest = copy;
  for (int i = 0; i < 4; i++) {
    fields[i] = strsep(&rest, ",");
    if (fields[i] == NULL) usage("a link is RATE_BPS,DELAY_US,LOSS,QUEUE_BYTES");
  }
  if (rest != NULL) usage("a link is RATE_BPS,DELAY_US,LOSS,QUEUE_BYTES");
  uint64_t rate = parse_u64(fields[0], "rate");
  uint64_t delay_us = parse_u64(fields[1], "delay");
  char *end;
  double loss = strtod(fields[2], &end);
  if (end == fields[2] || *end != '\0' || !(loss >= 0 && loss < 1)) usage("loss is a probability in [0, 1)");
  uint64_t queue = parse_u64(fields[3], "queue");
  if (rate == 0 || queue < PACKET_MAX_BYTES) usage("rate must be > 0 and the queue ≥ 65536 bytes");
  struct link *l = &links[index];
  for (int k = 0; k < 2; k++) {
    struct direction *d = &l->dir[k];
    d->rate_bps = rate;
    d->delay_ns = delay_us * 1000;
    d->queue_limit_bytes = queue;
    d->loss_threshold = (uint64_t)(loss * 18446744073709551616.0);
    d->rng = seed ^ (0x5851f42d4c957f2dULL * (uint64_t)(2 * index + k + 1));
    /* In flight: rate × delay on the wire plus the queue; records of small packets cost up to
       twice their bytes, and a packet or two in flight past the arithmetic: double it, plus 1 MiB. */
    d->ring_bytes = 2 * ((size_t)((unsigned __int128)rate * d->delay_ns / (8 * NS_PER_S)) + queue) + (1 << 20);
    d->ring = malloc(d->ring_bytes);
    if (d->ring == NULL) die("malloc");
  }
}

int main(int argc, char **argv) {
  uint64_t seed = 1;
  const char *prefix = "vmwan";
  int i = 1;
  for (; i < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
    if (i + 1 >= argc) usage("an option needs a value");
    if (strcmp(argv[i], "--seed") == 0) seed = parse_u64(argv[i + 1], "seed");
    else if (strcmp(argv[i], "--name") == 0) prefix = argv[i + 1];
    else usage("unknown option");
  }
  if (i >= argc) usage("no link given");
  if (argc - i > MAX_LINKS) usage("too many links");
  if (strlen(prefix) > IFNAMSIZ - 4) usage("name prefix too long");
  for (; i < argc; i++) parse_link(argv[i], seed, link_count++);

  /* Release times need sub-millisecond wake-ups, not the default 50 µs of timer slack on top. */
  prctl(PR_SET_TIMERSLACK, 1UL);
  signal(SIGPIPE, SIG_IGN);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGUSR1);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  if (sigprocmask(SIG_BLOCK, &signals, NULL) < 0) die("sigprocmask");
  int signal_fd = signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC);
  if (signal_fd < 0) die("signalfd");

  int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd < 0) die("epoll_create1");
  char pattern[IFNAMSIZ];
  snprintf(pattern, sizeof pattern, "%s%%d", prefix);
  for (int n = 0; n < link_count; n++) {
    struct link *l = &links[n];
    for (int k = 0; k < 2; k++) l->fds[k] = open_tun(pattern, l->names[k]);
    for (int k = 0; k < 2; k++) {
      l->dir[k].from_fd = l->fds[k];
      l->dir[k].to_fd = l->fds[1 - k];
      struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)(n * 2 + k)};
      if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, l->fds[k], &ev) < 0) die("epoll_ctl");
    }
  }
  struct epoll_event ev_signal = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
  if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, signal_fd, &ev_signal) < 0) die("epoll_ctl");
  struct epoll_event ev_stdin = {.events = EPOLLIN, .data.u64 = UINT64_MAX - 1};
  /* stdin may be a file or /dev/null (epoll refuses those): then only signals end us. */
  (void)epoll_ctl(epoll_fd, EPOLL_CTL_ADD, 0, &ev_stdin);

  printf("{\"ready\":[");
  for (int n = 0; n < link_count; n++) printf("%s[\"%s\",\"%s\"]", n == 0 ? "" : ",", links[n].names[0], links[n].names[1]);
  printf("]}\n");
  fflush(stdout);

  struct epoll_event events[2 * MAX_LINKS + 2];
  for (;;) {
    uint64_t now = now_ns();
    uint64_t next = 0;
    for (int n = 0; n < link_count; n++) {
      for (int k = 0; k < 2; k++) {
        uint64_t due = release_due(&links[n].dir[k], now);
        if (due != 0 && (next == 0 || due < next)) next = due;
      }
    }
    struct timespec timeout;
    struct timespec *wait = NULL;
    if (next != 0) {
      uint64_t left = next > now ? next - now : 0;
      timeout.tv_sec = (time_t)(left / NS_PER_S);
      timeout.tv_nsec = (long)(left % NS_PER_S);
      wait = &timeout;
    }
    int ready = epoll_pwait2(epoll_fd, events, 2 * MAX_LINKS + 2, wait, NULL);
    if (ready < 0) {
      if (errno == EINTR) continue;
      die("epoll_pwait2");
    }
    now = now_ns();
    for (int e = 0; e < ready; e++) {
      uint64_t tag = events[e].data.u64;
      if (tag == UINT64_MAX) {
        struct signalfd_siginfo info;
        while (read(signal_fd, &info, sizeof info) == sizeof info) {
          print_counters();
          if (info.ssi_signo != SIGUSR1) return 0;
        }
      } else if (tag == UINT64_MAX - 1) {
        ssize_t got = read(0, scratch, sizeof scratch);
        if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
          print_counters();
          return 0;
        }
      } else {
        struct direction *d = &links[tag / 2].dir[tag % 2];
        for (int p = 0; p < READ_BURST_PACKETS; p++) {
          ssize_t got = read(d->from_fd, scratch, sizeof scratch);
          /* EAGAIN: drained. EIO: the device is between namespaces or not up yet; its
             packets, if any, come once it is. */
          if (got < 0) {
            if (errno == EAGAIN || errno == EINTR || errno == EIO) break;
            die("read from a TUN device");
          }
          if (got > 0) on_packet(d, scratch, (uint32_t)got, now);
        }
      }
    }
  }
}
