//! A small seeded generator (SplitMix64), so corpora are reproducible across
//! machines and dependency versions.

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % ((hi - lo + 1) as u64)) as i64
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next_u64() % items.len() as u64) as usize]
    }

    /// `*` with probability `star_percent`; else one item (with probability
    /// `one_percent`) or two to four, made by `item`, joined by commas.
    pub fn star_or_list(
        &mut self,
        star_percent: u64,
        one_percent: u64,
        mut item: impl FnMut(&mut Rng) -> String,
    ) -> String {
        if self.chance(star_percent) {
            return "*".to_string();
        }
        let n = if self.chance(one_percent) {
            1
        } else {
            self.range(2, 4)
        };
        (0..n).map(|_| item(self)).collect::<Vec<_>>().join(",")
    }
}
