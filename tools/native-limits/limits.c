// native-limits: this machine's limits for the bench's hot paths, in C (built with cc -O2 by the
// bench's limits suite). The same shapes as the JavaScript limits: a hot 4 KiB source whose
// first word changes every page, frames of a region touched once before timing.
//
// Usage: native-limits PAGES REPEATS. Prints one JSON object: per figure the pages (or
// operations) per second of each repeat, CPU time (CLOCK_PROCESS_CPUTIME_ID), and `xxh64`,
// the XXH64 (seed 0) of the first source page, for the bench to check against xxhash-wasm.
//
// XXH64 is written here from its specification (Yann Collet's xxHash, 64-bit variant).

#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define PAGE 4096

// The primes of XXH64 (the fifth serves inputs shorter than 32 bytes, never a page).
static const uint64_t P1 = 0x9E3779B185EBCA87ULL, P2 = 0xC2B2AE3D27D4EB4FULL, P3 = 0x165667B19E3779F9ULL, P4 = 0x85EBCA77C2B2AE63ULL;

static inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
static inline uint64_t load64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v; // little-endian machines (x86_64, arm64)
}
static inline uint64_t lane(uint64_t acc, uint64_t input) { return rotl(acc + input * P2, 31) * P1; }
static inline uint64_t fold(uint64_t acc, uint64_t v) { return (acc ^ lane(0, v)) * P1 + P4; }

// XXH64 of a whole page (4096 bytes: a multiple of 32, so no tail), seed 0.
static uint64_t xxh64_page(const uint8_t *p) {
  uint64_t v1 = P1 + P2, v2 = P2, v3 = 0, v4 = (uint64_t)0 - P1;
  for (const uint8_t *end = p + PAGE; p < end; p += 32) {
    v1 = lane(v1, load64(p));
    v2 = lane(v2, load64(p + 8));
    v3 = lane(v3, load64(p + 16));
    v4 = lane(v4, load64(p + 24));
  }
  uint64_t h = rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18);
  h = fold(fold(fold(fold(h, v1), v2), v3), v4);
  h += PAGE;
  h ^= h >> 33;
  h *= P2;
  h ^= h >> 29;
  h *= P3;
  h ^= h >> 32;
  return h;
}

static double cpu_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static volatile uint64_t sink;

static void print_rates(const char *name, const double *rates, int repeats, int last) {
  printf("\"%s\":[", name);
  for (int r = 0; r < repeats; r++) printf("%s%.0f", r == 0 ? "" : ",", rates[r]);
  printf("]%s", last ? "" : ",");
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: native-limits PAGES REPEATS\n");
    return 2;
  }
  long pages = atol(argv[1]);
  int repeats = atoi(argv[2]);
  if (pages < 16 || repeats < 1 || repeats > 1000) {
    fprintf(stderr, "native-limits: PAGES must be >= 16, REPEATS 1 to 1000\n");
    return 2;
  }
  uint8_t *src = aligned_alloc(64, PAGE);
  uint8_t *frames = mmap(NULL, (size_t)pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (src == NULL || frames == MAP_FAILED) {
    perror("native-limits");
    return 1;
  }
  madvise(frames, (size_t)pages * PAGE, MADV_NOHUGEPAGE);
  uint64_t seed = 1;
  for (int i = 0; i < PAGE; i++) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    src[i] = (uint8_t)(seed >> 56);
  }
  uint64_t first_hash = xxh64_page(src);
  uint32_t *word = (uint32_t *)src;
  for (long m = 0; m < pages; m++) memcpy(frames + m * PAGE, src, PAGE); // touched once

  double copy[1000], hash[1000], cold[1000], compare[1000], copy_hash[1000], hash_compare[1000], touch[1000];
  for (int r = 0; r < repeats; r++) {
    double t = cpu_s();
    for (long i = 0; i < pages; i++) {
      word[0] = (uint32_t)i;
      memcpy(frames + i * PAGE, src, PAGE);
    }
    copy[r] = pages / (cpu_s() - t);

    t = cpu_s();
    for (long i = 0; i < pages; i++) {
      word[0] = (uint32_t)i;
      sink ^= xxh64_page(src);
    }
    hash[r] = pages / (cpu_s() - t);

    t = cpu_s();
    for (long i = 0; i < pages; i++) sink ^= xxh64_page(frames + i * PAGE);
    cold[r] = pages / (cpu_s() - t);

    // Every frame holds src as it is now, so that each compare runs equal to the end.
    for (long m = 0; m < pages; m++) memcpy(frames + m * PAGE, src, PAGE);
    t = cpu_s();
    for (long i = 0; i < pages; i++) sink += memcmp(frames + i * PAGE, src, PAGE) == 0;
    compare[r] = pages / (cpu_s() - t);

    // A whole-page write of new content: hash it, copy it into its frame.
    t = cpu_s();
    for (long i = 0; i < pages; i++) {
      word[0] = (uint32_t)i;
      sink ^= xxh64_page(src);
      memcpy(frames + i * PAGE, src, PAGE);
    }
    copy_hash[r] = pages / (cpu_s() - t);

    // A whole-page write of stored content: hash it, compare it with the frame that holds it.
    for (long m = 0; m < pages; m++) memcpy(frames + m * PAGE, src, PAGE);
    t = cpu_s();
    for (long i = 0; i < pages; i++) {
      sink ^= xxh64_page(src);
      sink += memcmp(frames + i * PAGE, src, PAGE) == 0;
    }
    hash_compare[r] = pages / (cpu_s() - t);

    // The first write to a never-touched page: the kernel's fault and zeroing, then the store.
    uint8_t *fresh = mmap(NULL, (size_t)pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (fresh == MAP_FAILED) {
      perror("native-limits: mmap");
      return 1;
    }
    madvise(fresh, (size_t)pages * PAGE, MADV_NOHUGEPAGE);
    t = cpu_s();
    for (long i = 0; i < pages; i++) fresh[i * PAGE] = 1;
    touch[r] = pages / (cpu_s() - t);
    munmap(fresh, (size_t)pages * PAGE);
  }
  printf("{\"pages\":%ld,\"xxh64\":\"%016llx\",", pages, (unsigned long long)first_hash);
  print_rates("copy", copy, repeats, 0);
  print_rates("hash", hash, repeats, 0);
  print_rates("hashCold", cold, repeats, 0);
  print_rates("compare", compare, repeats, 0);
  print_rates("copyHash", copy_hash, repeats, 0);
  print_rates("hashCompare", hash_compare, repeats, 0);
  print_rates("firstTouch", touch, repeats, 1);
  printf("}\n");
  return 0;
}
