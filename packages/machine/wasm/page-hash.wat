;; The page hash and the page checksum of one 4096-byte page, read in place from the memory the
;; module is given. Assembled by scripts/assemble-wasm.mjs into src/page-hash-wasm.ts.
(module
  (import "env" "memory" (memory 0))

  ;; The high half of the last page64's hash.
  (global $hi (export "hi") (mut i32) (i32.const 0))

  ;; XXH64 (seed 0) of the page at byte offset $p, its low 32 bits.
  (func (export "page") (param $p i32) (result i32)
    (i32.wrap_i64 (call $xxh64 (local.get $p))))

  ;; XXH64 of the page at $p: its low 32 bits, and its high 32 bits in the global "hi".
  (func (export "page64") (param $p i32) (result i32)
    (local $h i64)
    (local.set $h (call $xxh64 (local.get $p)))
    (global.set $hi (i32.wrap_i64 (i64.shr_u (local.get $h) (i64.const 32))))
    (i32.wrap_i64 (local.get $h)))

  ;; XXH64 (seed 0) of the page at byte offset $p. Written from the XXH64 specification: four
  ;; 64-bit lanes over 32-byte stripes, then the lanes' merge, the length, and the avalanche. A
  ;; page is 128 whole stripes, so there is no tail.
  (func $xxh64 (param $p i32) (result i64)
    (local $v1 i64) (local $v2 i64) (local $v3 i64) (local $v4 i64) (local $end i32) (local $h i64)
    (local.set $v1 (i64.const 0x60EA27EEADC0B5D6)) ;; PRIME64_1 + PRIME64_2
    (local.set $v2 (i64.const 0xC2B2AE3D27D4EB4F)) ;; PRIME64_2
    (local.set $v3 (i64.const 0))
    (local.set $v4 (i64.const 0x61C8864E7A143579)) ;; -PRIME64_1
    (local.set $end (i32.add (local.get $p) (i32.const 4096)))
    ;; Each lane: round(v, input) = rotl(v + input * PRIME64_2, 31) * PRIME64_1, written out in the
    ;; loop because V8 does not inline a call here (a call per round runs at a third of the speed).
    (loop $stripe
      (local.set $v1 (i64.mul (i64.rotl (i64.add (local.get $v1) (i64.mul (i64.load offset=0 (local.get $p)) (i64.const 0xC2B2AE3D27D4EB4F))) (i64.const 31)) (i64.const 0x9E3779B185EBCA87)))
      (local.set $v2 (i64.mul (i64.rotl (i64.add (local.get $v2) (i64.mul (i64.load offset=8 (local.get $p)) (i64.const 0xC2B2AE3D27D4EB4F))) (i64.const 31)) (i64.const 0x9E3779B185EBCA87)))
      (local.set $v3 (i64.mul (i64.rotl (i64.add (local.get $v3) (i64.mul (i64.load offset=16 (local.get $p)) (i64.const 0xC2B2AE3D27D4EB4F))) (i64.const 31)) (i64.const 0x9E3779B185EBCA87)))
      (local.set $v4 (i64.mul (i64.rotl (i64.add (local.get $v4) (i64.mul (i64.load offset=24 (local.get $p)) (i64.const 0xC2B2AE3D27D4EB4F))) (i64.const 31)) (i64.const 0x9E3779B185EBCA87)))
      (local.set $p (i32.add (local.get $p) (i32.const 32)))
      (br_if $stripe (i32.lt_u (local.get $p) (local.get $end))))
    (local.set $h
      (i64.add
        (i64.add (i64.rotl (local.get $v1) (i64.const 1)) (i64.rotl (local.get $v2) (i64.const 7)))
        (i64.add (i64.rotl (local.get $v3) (i64.const 12)) (i64.rotl (local.get $v4) (i64.const 18)))))
    (local.set $h (call $merge (local.get $h) (local.get $v1)))
    (local.set $h (call $merge (local.get $h) (local.get $v2)))
    (local.set $h (call $merge (local.get $h) (local.get $v3)))
    (local.set $h (call $merge (local.get $h) (local.get $v4)))
    (local.set $h (i64.add (local.get $h) (i64.const 4096)))
    ;; avalanche
    (local.set $h (i64.mul (i64.xor (local.get $h) (i64.shr_u (local.get $h) (i64.const 33))) (i64.const 0xC2B2AE3D27D4EB4F)))
    (local.set $h (i64.mul (i64.xor (local.get $h) (i64.shr_u (local.get $h) (i64.const 29))) (i64.const 0x165667B19E3779F9)))
    (i64.xor (local.get $h) (i64.shr_u (local.get $h) (i64.const 32))))

  ;; round(acc, input): acc + input * PRIME64_2, rotated left by 31, times PRIME64_1.
  (func $round (param $acc i64) (param $input i64) (result i64)
    (i64.mul
      (i64.rotl (i64.add (local.get $acc) (i64.mul (local.get $input) (i64.const 0xC2B2AE3D27D4EB4F))) (i64.const 31))
      (i64.const 0x9E3779B185EBCA87)))

  ;; (acc ^ round(0, v)) * PRIME64_1 + PRIME64_4.
  (func $merge (param $acc i64) (param $v i64) (result i64)
    (i64.add
      (i64.mul (i64.xor (local.get $acc) (call $round (i64.const 0) (local.get $v))) (i64.const 0x9E3779B185EBCA87))
      (i64.const 0x85EBCA77C2B2AE63)))
;; The page checksum (not a hash for an index: what a scanner needs to tell that a page changed
  ;; between two visits): four 32-bit multiply-xor lanes over the page's words, then folded.
  (func (export "checksum") (param $p i32) (result i32)
    (local $a i32) (local $b i32) (local $c i32) (local $d i32) (local $end i32) (local $h i32)
    (local.set $a (i32.const 0x9e3779b9))
    (local.set $b (i32.const 0x85ebca6b))
    (local.set $c (i32.const 0xc2b2ae35))
    (local.set $d (i32.const 0x27d4eb2f))
    (local.set $end (i32.add (local.get $p) (i32.const 4096)))
    (loop $words
      (local.set $a (i32.mul (i32.xor (local.get $a) (i32.load offset=0 (local.get $p))) (i32.const 0x85ebca6b)))
      (local.set $b (i32.mul (i32.xor (local.get $b) (i32.load offset=4 (local.get $p))) (i32.const 0xc2b2ae35)))
      (local.set $c (i32.mul (i32.xor (local.get $c) (i32.load offset=8 (local.get $p))) (i32.const 0x27d4eb2f)))
      (local.set $d (i32.mul (i32.xor (local.get $d) (i32.load offset=12 (local.get $p))) (i32.const 0x165667b1)))
      (local.set $p (i32.add (local.get $p) (i32.const 16)))
      (br_if $words (i32.lt_u (local.get $p) (local.get $end))))
    ;; h = a ^ (b ^ b >>> 15) * 31 ^ (c ^ c >>> 13) * 17 ^ d ^ d >>> 16; then (h ^ h >>> 16) * 0x7feb352d
    (local.set $h
      (i32.xor
        (i32.xor (local.get $a) (i32.mul (i32.xor (local.get $b) (i32.shr_u (local.get $b) (i32.const 15))) (i32.const 31)))
        (i32.xor
          (i32.mul (i32.xor (local.get $c) (i32.shr_u (local.get $c) (i32.const 13))) (i32.const 17))
          (i32.xor (local.get $d) (i32.shr_u (local.get $d) (i32.const 16))))))
    (i32.mul (i32.xor (local.get $h) (i32.shr_u (local.get $h) (i32.const 16))) (i32.const 0x7feb352d)))
)
