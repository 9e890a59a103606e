"""The toolkit's one RNG (`datasets::rng`), bit for bit: SplitMix64 seeded and derived the same
way, so a clip's random draws (frames, crops, flips, audio crop) are the trainer's own."""

MASK = (1 << 64) - 1


def fnv1a(s: str) -> int:
    """FNV-1a over the UTF-8 bytes of `s` (the clip-id hash of the loader and the hold-out)."""
    h = 0xCBF29CE484222325
    for b in s.encode("utf-8"):
        h = ((h ^ b) * 0x100000001B3) & MASK
    return h


class Rng:
    """SplitMix64, as `datasets::rng::Rng`."""

    def __init__(self, seed: int = 0):
        self.state = (seed ^ 0x2545F4914F6CDD1D) & MASK

    @classmethod
    def derive(cls, parts):
        r = cls(0)
        for p in parts:
            r.state ^= p & MASK
            r.next_u64()
        return r

    def next_u64(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def uniform(self) -> float:
        return (self.next_u64() >> 11) / float(1 << 53)

    def below(self, n: int) -> int:
        if n <= 1:
            return 0
        return int(self.uniform() * n) % n

    def shuffle(self, v):
        """Fisher-Yates from the back, as `Rng::shuffle`."""
        for i in range(len(v) - 1, 0, -1):
            j = self.below(i + 1)
            v[i], v[j] = v[j], v[i]
