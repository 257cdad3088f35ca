#!/usr/bin/python3
"""Independent Python transcription of the published reference algorithms (Vigna's splitmix64.c
and Blackman & Vigna's xoshiro256plusplus.c), used to derive the values hard-coded in
tests/test_release.cpp ("xoshiro256++ reproduces the reference outputs"). Run it to print them.

Cross-checks against published third-party tables: state {1, 2, 3, 4} gives 41943041, 58720359,
3588806011781223, ... (the test vector of the Rust crate rand_xoshiro), state {0, 0, 0, 1} gives
0x800000, 0x800011, 0x2200000800011, ... (DSCF-1224/xoshiro-fortran, test/README.md), and
SplitMix64 seeded with 0 gives 0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, ..."""
MASK = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & MASK


def xoshiro256pp(state):
    s = list(state)
    while True:
        result = (rotl((s[0] + s[3]) & MASK, 23) + s[0]) & MASK
        t = (s[1] << 17) & MASK
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        yield result


def splitmix64(seed):
    x = seed
    while True:
        x = (x + GOLDEN) & MASK
        z = x
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        yield z ^ (z >> 31)


def main():
    for state in ([1, 2, 3, 4], [0, 0, 0, 1]):
        g = xoshiro256pp(state)
        print('state', state, [hex(next(g)) for _ in range(10)])
    for seed in (0, 12345):
        sm = splitmix64(seed)
        state = [next(sm) for _ in range(4)]
        g = xoshiro256pp(state)
        print('seed', seed, 'state', [hex(x) for x in state], 'outputs', [hex(next(g)) for _ in range(3)])


if __name__ == '__main__':
    main()
