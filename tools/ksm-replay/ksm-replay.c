// ksm-replay: replays a pagevisor KSM scenario on the host's own KSM, with real processes.
//
// One child process per guest holds the guest's memory: one private anonymous mapping with
// MADV_NOHUGEPAGE, untouched at start (pages not present, as a guest's zero pages are not
// merged). The parent reads commands on stdin (written by `pagevisor ksm-diff`, see
// apps/simulator/src/ksm-diff.ts), has the children carry out the memory ones, drives the KSM
// knobs in /sys/kernel/mm/ksm, and prints one JSON line per command on stdout. ksmd runs only
// inside waits (run = 1 while waiting, 0 otherwise), so nothing moves between checkpoints.
//
// Every knob is saved before anything changes and restored at exit (normal, error or signal).
// The counters are machine-wide: replays take turns on a lock file (waiting up to 10 minutes for
// another replay to end), and it refuses to start while any other process has memory KSM knows of.
//
// Commands, one a line (`data` and `write` are followed by their raw bytes):
//   knob NAME VALUE              set a knob before the guests start (the scenario's options)
//   guests N PAGES...            start N guests of PAGES pages each
//   fill G GFN COUNT BYTE        memset pages
//   data G GFN COUNT             COUNT*4096 bytes follow: the pages' contents
//   write G GFN OFFSET LEN       LEN bytes follow, written at OFFSET of page GFN
//   madvise G GFN COUNT ADVICE   madvise(2) with ADVICE (4 DONTNEED, 12 MERGEABLE, 13 UNMERGEABLE)
//   merge G ON                   prctl(PR_SET_MEMORY_MERGE, ON)
//   munmap G GFN COUNT           munmap(2) pages
//   mmap G GFN COUNT             map pages again (MAP_FIXED, MADV_NOHUGEPAGE): they read as zeros
//   fork G                       guest G forks: the child is the next guest (its number is the
//                                count of guests so far), on pipes through FIFOs in a temp dir
//   set NAME VALUE               a knob as a scenario step; `run` 1 takes effect inside waits
//   wait_full_scans N TIMEOUT_MS run ksmd until full_scans has risen by N (its result has the
//                                wall milliseconds that took, polled every 50 us)
//   wait MS                      run ksmd for MS milliseconds
//   checkpoint LABEL             print every counter, global and per guest (with each guest's
//                                own PR_GET_MEMORY_MERGE as prctl_memory_merge)
//   end
//
// Exit codes: 0 done; 1 a command failed (printed); 2 bad input; 4 the host has no KSM;
// 5 no permission to write its knobs; 6 another process has KSM memory.

#define _GNU_SOURCE
#include <dirent.h>
#include <sched.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef PR_SET_MEMORY_MERGE
#define PR_SET_MEMORY_MERGE 67
#endif
#ifndef PR_GET_MEMORY_MERGE
#define PR_GET_MEMORY_MERGE 68
#endif

#define KSM "/sys/kernel/mm/ksm/"
#define PAGE 4096
#define MAX_GUESTS 64

static const char *const KNOBS[] = {
    "run", "pages_to_scan", "sleep_millisecs", "max_page_sharing", "merge_across_nodes", "use_zero_pages", "smart_scan",
    "stable_node_chains_prune_millisecs", "advisor_mode", "advisor_max_cpu", "advisor_target_scan_time",
    "advisor_min_pages_to_scan", "advisor_max_pages_to_scan",
};
#define NKNOBS (sizeof KNOBS / sizeof KNOBS[0])
static char saved[NKNOBS][64];
static int saved_ok[NKNOBS];
static int nsaved;

struct guest {
  pid_t pid;
  int to, from; // command pipe to the child, result pipe from it
  long pages;
};
static struct guest guests[MAX_GUESTS];
static int nguests;
static int scenario_run = 1; // the scenario's run knob: 1 lets ksmd run inside waits
static long base_full_scans, base_pages_scanned, base_pages_skipped;
static char fifo_dir[64]; // where a forked guest's pipes are made

static void die(int code, const char *fmt, const char *arg) {
  fprintf(stderr, "ksm-replay: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n");
  exit(code);
}

static int read_file(const char *path, char *buf, size_t n) {
  FILE *f = fopen(path, "r");
  if (f == NULL) return -1;
  size_t got = fread(buf, 1, n - 1, f);
  fclose(f);
  buf[got] = 0;
  while (got > 0 && (buf[got - 1] == '\n' || buf[got - 1] == ' ')) buf[--got] = 0;
  return 0;
}

// Writes `value` to knob `name`; returns 0 or the errno the kernel gave.
static int write_knob(const char *name, const char *value) {
  char path[256];
  snprintf(path, sizeof path, KSM "%s", name);
  FILE *f = fopen(path, "w");
  if (f == NULL) return errno;
  int err = 0;
  if (fputs(value, f) < 0) err = errno;
  if (fclose(f) != 0 && err == 0) err = errno;
  return err;
}

static long counter(const char *name) {
  char path[256], buf[64];
  snprintf(path, sizeof path, KSM "%s", name);
  if (read_file(path, buf, sizeof buf) != 0) return -1;
  return strtol(buf, NULL, 10);
}

// advisor_mode reads "[none] scan-time": the bracketed word is the value to write back.
static void knob_value(const char *raw, char *out, size_t n) {
  const char *open = strchr(raw, '[');
  const char *close = open == NULL ? NULL : strchr(open, ']');
  if (open != NULL && close != NULL) snprintf(out, n, "%.*s", (int)(close - open - 1), open + 1);
  else snprintf(out, n, "%s", raw);
}

static void restore(void) {
  static int done;
  if (done) return;
  done = 1;
  for (int i = 0; i < nguests; i++) {
    if (guests[i].pid > 0) kill(guests[i].pid, SIGKILL);
  }
  // Forked guests are grandchildren: as the subreaper, this process reaps them too.
  while (waitpid(-1, NULL, 0) > 0) {
  }
  if (fifo_dir[0] != 0) rmdir(fifo_dir);
  if (nsaved == 0) return;
  // The guests are gone; unmerge what is left (nothing, but for a guest still exiting), so that
  // max_page_sharing and merge_across_nodes may be written back, then the rest, run last.
  write_knob("run", "2");
  for (size_t i = 1; i < NKNOBS; i++) {
    if (saved_ok[i]) write_knob(KNOBS[i], saved[i]);
  }
  if (saved_ok[0]) write_knob("run", saved[0]);
}

static void on_signal(int sig) {
  restore();
  signal(sig, SIG_DFL);
  raise(sig);
}

// The child: one guest's memory, commands from the parent until the pipe closes.
struct cmd {
  int op;
  long gfn, count, arg;
};
enum { C_FILL, C_DATA, C_WRITE, C_MADVISE, C_MERGE, C_MUNMAP, C_MMAP, C_FORK, C_GET_MERGE };

static void fifo_path(char *out, size_t n, long guest, const char *end) {
  snprintf(out, n, "%s/%ld.%s", fifo_dir, guest, end);
}

static int read_all(int fd, void *buf, size_t n) {
  char *p = buf;
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r <= 0) return -1;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

static void write_all(int fd, const void *buf, size_t n) {
  const char *p = buf;
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w <= 0) exit(3);
    p += w;
    n -= (size_t)w;
  }
}

// MADV_UNMERGEABLE on every mapping of this process but [mem, mem + len).
static void unmerge_all_but(char *mem, size_t len) {
  FILE *maps = fopen("/proc/self/maps", "r");
  if (maps == NULL) return;
  char line[512];
  unsigned long from[64], to[64];
  int n = 0;
  // Read them all first: madvise may split or merge areas under the reader.
  while (n < 64 && fgets(line, sizeof line, maps) != NULL) {
    if (sscanf(line, "%lx-%lx", &from[n], &to[n]) == 2) n++;
  }
  fclose(maps);
  for (int i = 0; i < n; i++) {
    if (from[i] >= (unsigned long)mem && to[i] <= (unsigned long)mem + len) continue;
    madvise((void *)from[i], to[i] - from[i], MADV_UNMERGEABLE); // special areas refuse: no matter
  }
}

static void child(int in, int out, long pages) {
  char *mem = mmap(NULL, (size_t)pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  int err = mem == MAP_FAILED ? errno : 0;
  if (err == 0 && madvise(mem, (size_t)pages * PAGE, MADV_NOHUGEPAGE) != 0) err = errno;
  write_all(out, &err, sizeof err);
  if (err != 0) exit(3);
  struct cmd c;
  while (read_all(in, &c, sizeof c) == 0) {
    char *at = mem + c.gfn * PAGE;
    err = 0;
    switch (c.op) {
    case C_FILL:
      memset(at, (int)c.arg, (size_t)c.count * PAGE);
      break;
    case C_DATA:
      if (read_all(in, at, (size_t)c.count * PAGE) != 0) exit(3);
      break;
    case C_WRITE:
      if (read_all(in, at + c.arg, (size_t)c.count) != 0) exit(3);
      break;
    case C_MADVISE:
      if (madvise(at, (size_t)c.count * PAGE, (int)c.arg) != 0) err = errno;
      break;
    case C_MERGE:
      if (prctl(PR_SET_MEMORY_MERGE, c.arg, 0, 0, 0) != 0) err = errno;
      // The prctl makes every area of this process mergeable, its own stack and data too: those
      // are not the guest's, so they are made unmergeable again, and only the guest's is scanned.
      else if (c.arg == 1) unmerge_all_but(mem, (size_t)pages * PAGE);
      break;
    case C_MUNMAP:
      if (munmap(at, (size_t)c.count * PAGE) != 0) err = errno;
      break;
    case C_MMAP:
      if (mmap(at, (size_t)c.count * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) == MAP_FAILED) err = errno;
      else if (madvise(at, (size_t)c.count * PAGE, MADV_NOHUGEPAGE) != 0) err = errno;
      break;
    case C_GET_MERGE: {
      // The answer is the prctl's value, or minus its errno.
      int v = prctl(PR_GET_MEMORY_MERGE, 0, 0, 0, 0);
      err = v < 0 ? -errno : v;
      break;
    }
    case C_FORK: {
      pid_t pid = fork();
      if (pid < 0) {
        err = errno;
        break;
      }
      if (pid > 0) break;
      // The child: guest number c.arg, on the FIFOs the parent made for it; its pid is its first word.
      char path[128];
      close(in);
      close(out);
      fifo_path(path, sizeof path, c.arg, "down");
      in = open(path, O_RDONLY);
      fifo_path(path, sizeof path, c.arg, "up");
      out = open(path, O_WRONLY);
      if (in < 0 || out < 0) exit(3);
      pid_t me = getpid();
      write_all(out, &me, sizeof me);
      continue;
    }
    }
    write_all(out, &err, sizeof err);
  }
  exit(0);
}

static int send(int g, struct cmd c, const void *payload, size_t n) {
  write_all(guests[g].to, &c, sizeof c);
  if (n > 0) write_all(guests[g].to, payload, n);
  int err;
  if (read_all(guests[g].from, &err, sizeof err) != 0) die(1, "guest %s died", "");
  return err;
}

static void start_guests(int n, long *pages) {
  for (int i = 0; i < n; i++) {
    int down[2], up[2];
    if (pipe(down) != 0 || pipe(up) != 0) die(1, "pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0) die(1, "fork: %s", strerror(errno));
    if (pid == 0) {
      close(down[1]);
      close(up[0]);
      child(down[0], up[1], pages[i]);
    }
    close(down[0]);
    close(up[1]);
    guests[i] = (struct guest){pid, down[1], up[0], pages[i]};
    nguests = i + 1;
    int err;
    if (read_all(up[0], &err, sizeof err) != 0 || err != 0) die(1, "a guest could not map its memory: %s", strerror(err));
  }
}

// Refuses to start while another process has memory KSM knows of (the counters are machine-wide).
static void check_idle(void) {
  const char *busy[] = {"pages_shared", "pages_sharing", "pages_unshared", "pages_volatile", "ksm_zero_pages"};
  for (size_t i = 0; i < sizeof busy / sizeof busy[0]; i++) {
    if (counter(busy[i]) > 0) die(6, "another process has KSM memory (%s is not 0): run one case at a time", busy[i]);
  }
  DIR *proc = opendir("/proc");
  if (proc == NULL) return;
  struct dirent *e;
  while ((e = readdir(proc)) != NULL) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    char path[300], buf[512];
    snprintf(path, sizeof path, "/proc/%s/ksm_stat", e->d_name);
    if (read_file(path, buf, sizeof buf) != 0) continue;
    char *items = strstr(buf, "ksm_rmap_items ");
    if ((items != NULL && strtol(items + 15, NULL, 10) > 0) || strstr(buf, "ksm_mergeable yes") != NULL) {
      closedir(proc);
      die(6, "process %s has mergeable memory: KSM's counters are machine-wide, run one case at a time", e->d_name);
    }
  }
  closedir(proc);
}

static void sleep_ms(double ms) {
  struct timespec t = {(time_t)(ms / 1000), (long)((ms - (time_t)(ms / 1000) * 1000) * 1e6)};
  nanosleep(&t, NULL);
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void ksmd(int on) {
  if (scenario_run == 1) write_knob("run", on ? "1" : "0");
}

static void print_checkpoint(const char *label) {
  printf("{\"checkpoint\":\"%s\",\"global\":{", label);
  DIR *d = opendir(KSM);
  struct dirent *e;
  int first = 1;
  while (d != NULL && (e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char path[300], buf[64], *end;
    snprintf(path, sizeof path, KSM "%s", e->d_name);
    if (read_file(path, buf, sizeof buf) != 0) continue;
    long v = strtol(buf, &end, 10);
    if (end == buf || *end != 0) continue; // advisor_mode and the like
    if (strcmp(e->d_name, "full_scans") == 0) v -= base_full_scans;
    if (strcmp(e->d_name, "pages_scanned") == 0) v -= base_pages_scanned;
    if (strcmp(e->d_name, "pages_skipped") == 0) v -= base_pages_skipped;
    printf("%s\"%s\":%ld", first ? "" : ",", e->d_name, v);
    first = 0;
  }
  if (d != NULL) closedir(d);
  printf("},\"guests\":[");
  for (int i = 0; i < nguests; i++) {
    char path[64], buf[512];
    printf("%s{\"prctl_memory_merge\":%d", i == 0 ? "" : ",", send(i, (struct cmd){C_GET_MERGE, 0, 0, 0}, NULL, 0));
    snprintf(path, sizeof path, "/proc/%d/ksm_stat", guests[i].pid);
    int firstkey = 0;
    if (read_file(path, buf, sizeof buf) == 0) {
      for (char *line = strtok(buf, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        char key[64], val[64], *end;
        if (sscanf(line, "%63s %63s", key, val) != 2) continue;
        size_t klen = strlen(key);
        if (klen > 0 && key[klen - 1] == ':') key[klen - 1] = 0; // "ksm_merge_any: no"

        long v = strtol(val, &end, 10);
        // ksm_merge_any and ksm_mergeable read yes or no: 1 or 0.
        if (strcmp(val, "yes") == 0 || strcmp(val, "no") == 0) v = val[0] == 'y';
        else if (end == val || *end != 0) continue;
        printf("%s\"%s\":%ld", firstkey ? "" : ",", key, v);
        firstkey = 0;
      }
    }
    printf("}");
  }
  printf("]}\n");
  fflush(stdout);
}

static void result(const char *op, int err) {
  if (err == 0) printf("{\"op\":\"%s\",\"ok\":true}\n", op);
  else printf("{\"op\":\"%s\",\"ok\":false,\"errno\":%d,\"error\":\"%s\"}\n", op, err, strerrorname_np(err) ? strerrorname_np(err) : "?");
  fflush(stdout);
}

// Guest g forks; the child becomes guest number nguests.
static int fork_guest(int g) {
  int n = nguests;
  if (n >= MAX_GUESTS) die(2, "fork: more than %s guests", "64");
  char down[128], up[128];
  fifo_path(down, sizeof down, n, "down");
  fifo_path(up, sizeof up, n, "up");
  if (mkfifo(down, 0600) != 0 || mkfifo(up, 0600) != 0) die(1, "mkfifo: %s", strerror(errno));
  int err = send(g, (struct cmd){C_FORK, 0, 0, n}, NULL, 0);
  if (err == 0) {
    // In the order the child opens them, so that neither waits on the other.
    int to = open(down, O_WRONLY), from = open(up, O_RDONLY);
    pid_t pid;
    if (to < 0 || from < 0 || read_all(from, &pid, sizeof pid) != 0) die(1, "the forked guest did not start: %s", strerror(errno));
    guests[n] = (struct guest){pid, to, from, guests[g].pages};
    nguests = n + 1;
  }
  unlink(down);
  unlink(up);
  return err;
}

static int guest_arg(const char *s) {
  int g = atoi(s);
  if (g < 0 || g >= nguests) die(2, "no guest %s", s);
  return g;
}

#define LOCK_FILE "/tmp/pagevisor-ksm-replay.lock"
#define LOCK_WAIT_S 600

// One replay at a time on this machine: waits for the lock, then holds it until exit.
static void take_turn(void) {
  int fd = open(LOCK_FILE, O_RDWR | O_CREAT, 0666);
  if (fd < 0) die(5, "cannot open the lock file %s", LOCK_FILE);
  for (int waited = 0; flock(fd, LOCK_EX | LOCK_NB) != 0; waited++) {
    if (errno != EWOULDBLOCK) die(1, "flock %s failed", LOCK_FILE);
    if (waited == 0) fprintf(stderr, "ksm-replay: waiting for another replay to end (%s)\n", LOCK_FILE);
    if (waited >= LOCK_WAIT_S * 10) die(6, "another replay held %s for 10 minutes: KSM is in use", LOCK_FILE);
    sleep_ms(100);
  }
}

int main(void) {
  if (access(KSM "run", F_OK) != 0) die(4, "this host has no KSM (%s is missing)", KSM);
  take_turn();
  // The waits stop ksmd in the sleep after a full scan (sleep_millisecs): a poller that a busy
  // machine leaves unscheduled that long would let the next batch start. As root, real-time
  // priority keeps it on time; the guests (forked later) go back to the normal policy.
  struct sched_param prio = {.sched_priority = 10};
  sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &prio);
  prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  char raw[64];
  for (size_t i = 0; i < NKNOBS; i++) {
    char path[256];
    snprintf(path, sizeof path, KSM "%s", KNOBS[i]);
    if (read_file(path, raw, sizeof raw) == 0) {
      knob_value(raw, saved[i], sizeof saved[i]);
      saved_ok[i] = 1;
    }
  }
  if (write_knob("run", saved[0]) != 0) die(5, "no permission to write %s (run as root)", KSM "run");
  nsaved = NKNOBS;
  atexit(restore);
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  signal(SIGPIPE, on_signal);
  check_idle();
  snprintf(fifo_dir, sizeof fifo_dir, "/tmp/pagevisor-ksm-replay-XXXXXX");
  if (mkdtemp(fifo_dir) == NULL) die(1, "mkdtemp: %s", strerror(errno));
  write_knob("run", "0");
  base_full_scans = counter("full_scans");
  base_pages_scanned = counter("pages_scanned");
  base_pages_skipped = counter("pages_skipped");

  char line[4096];
  static char page[PAGE * 16];
  while (fgets(line, sizeof line, stdin) != NULL) {
    char *argv[80];
    int argc = 0;
    for (char *t = strtok(line, " \n"); t != NULL && argc < 80; t = strtok(NULL, " \n")) argv[argc++] = t;
    if (argc == 0) continue;
    const char *op = argv[0];
    if (strcmp(op, "end") == 0) break;
    if (strcmp(op, "knob") == 0 && argc == 3) {
      if (strcmp(argv[1], "run") == 0) scenario_run = atoi(argv[2]);
      else {
        int err = write_knob(argv[1], argv[2]);
        if (err != 0) {
          result(op, err);
          return 1;
        }
      }
      result(op, 0);
    } else if (strcmp(op, "guests") == 0 && argc >= 2) {
      int n = atoi(argv[1]);
      if (n < 1 || n > MAX_GUESTS || argc != 2 + n) die(2, "guests: bad count %s", argv[1]);
      long pages[MAX_GUESTS];
      for (int i = 0; i < n; i++) pages[i] = atol(argv[2 + i]);
      start_guests(n, pages);
      result(op, 0);
    } else if (strcmp(op, "fill") == 0 && argc == 5) {
      result(op, send(guest_arg(argv[1]), (struct cmd){C_FILL, atol(argv[2]), atol(argv[3]), atol(argv[4])}, NULL, 0));
    } else if (strcmp(op, "data") == 0 && argc == 4) {
      int g = guest_arg(argv[1]);
      long gfn = atol(argv[2]), count = atol(argv[3]);
      // In batches of 16 pages through the parent's buffer.
      int err = 0;
      for (long done = 0; done < count && err == 0; done += 16) {
        long n = count - done < 16 ? count - done : 16;
        if (fread(page, PAGE, (size_t)n, stdin) != (size_t)n) die(2, "data: %s", "short input");
        err = send(g, (struct cmd){C_DATA, gfn + done, n, 0}, page, (size_t)n * PAGE);
      }
      result(op, err);
    } else if (strcmp(op, "write") == 0 && argc == 5) {
      int g = guest_arg(argv[1]);
      long len = atol(argv[4]);
      if (len < 1 || len > PAGE || fread(page, 1, (size_t)len, stdin) != (size_t)len) die(2, "write: %s", "bad length or short input");
      result(op, send(g, (struct cmd){C_WRITE, atol(argv[2]), len, atol(argv[3])}, page, (size_t)len));
    } else if (strcmp(op, "madvise") == 0 && argc == 5) {
      result(op, send(guest_arg(argv[1]), (struct cmd){C_MADVISE, atol(argv[2]), atol(argv[3]), atol(argv[4])}, NULL, 0));
    } else if (strcmp(op, "merge") == 0 && argc == 3) {
      result(op, send(guest_arg(argv[1]), (struct cmd){C_MERGE, 0, 0, atol(argv[2])}, NULL, 0));
    } else if ((strcmp(op, "munmap") == 0 || strcmp(op, "mmap") == 0) && argc == 4) {
      int kind = strcmp(op, "munmap") == 0 ? C_MUNMAP : C_MMAP;
      result(op, send(guest_arg(argv[1]), (struct cmd){kind, atol(argv[2]), atol(argv[3]), 0}, NULL, 0));
    } else if (strcmp(op, "fork") == 0 && argc == 2) {
      result(op, fork_guest(guest_arg(argv[1])));
    } else if (strcmp(op, "set") == 0 && argc == 3) {
      if (strcmp(argv[1], "run") == 0) {
        int v = atoi(argv[2]);
        // run 2 unmerges at once; run 1 is ksmd's inside the waits, run 0 keeps it stopped.
        int err = v == 2 ? write_knob("run", "2") : 0;
        if (err == 0) scenario_run = v;
        result(op, err);
      } else {
        result(op, write_knob(argv[1], argv[2]));
      }
    } else if (strcmp(op, "wait_full_scans") == 0 && argc == 3) {
      long target = counter("full_scans") + atol(argv[1]);
      double start = now_ms(), deadline = start + atof(argv[2]);
      ksmd(1);
      // Poll often: a full scan ends a batch, and ksmd then sleeps sleep_millisecs before the
      // next one, which stopping it in that window keeps from starting.
      while (counter("full_scans") < target && now_ms() < deadline) sleep_ms(0.05);
      double took = now_ms() - start;
      ksmd(0);
      int err = counter("full_scans") >= target ? 0 : ETIMEDOUT;
      if (err == 0) printf("{\"op\":\"%s\",\"ok\":true,\"ms\":%.3f}\n", op, took);
      else result(op, err);
      fflush(stdout);
    } else if (strcmp(op, "wait") == 0 && argc == 2) {
      ksmd(1);
      sleep_ms(atof(argv[1]));
      ksmd(0);
      result(op, 0);
    } else if (strcmp(op, "checkpoint") == 0 && argc == 2) {
      print_checkpoint(argv[1]);
    } else {
      die(2, "bad command: %s", op);
    }
  }
  restore();
  return 0;
}
