//! Bounded capture of a command's output: the first and the last part, the
//! two streams interleaved in the order they were read.
//!
//! Memory is bounded by the limit whatever the command prints: the head fills
//! up to half the limit and then stops growing; the tail is a ring of the
//! other half that overwrites its oldest bytes. Each stream switch starts a new
//! segment, and segments are charged [`SEGMENT_COST`] bytes against the same
//! budget, so a command alternating one-byte writes between stdout and stderr
//! cannot grow the bookkeeping without bound either.

use std::collections::VecDeque;

/// Which pipe a piece of output came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stream {
    Stdout,
    Stderr,
    /// The one pipe of a command run with both streams on it
    /// ([`crate::Spec::merge_output`]).
    Merged,
}

/// Budget charged per segment, about what its bookkeeping costs.
pub const SEGMENT_COST: usize = 16;

/// One piece of captured output, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    Data(Stream, &'a [u8]),
    /// This many bytes were dropped here (between the head and the tail).
    Omitted(u64),
}

/// What a run printed, bounded.
#[derive(Debug)]
pub struct Capture {
    head_budget: usize,
    head: Vec<u8>,
    head_segments: Vec<(Stream, usize)>,
    head_used: usize,
    head_full: bool,
    tail: Ring,
    /// Bytes written to each stream in total (a merged pipe counts as
    /// stdout).
    pub stdout_bytes: u64,
    pub stderr_bytes: u64,
}

impl Capture {
    /// A capture keeping at most about `limit` bytes (0: keep nothing, only
    /// count).
    pub fn new(limit: usize) -> Capture {
        let head_budget = limit / 2;
        Capture {
            head_budget,
            head: Vec::new(),
            head_segments: Vec::new(),
            head_used: 0,
            head_full: limit == 0,
            tail: Ring::new(limit - head_budget),
            stdout_bytes: 0,
            stderr_bytes: 0,
        }
    }

    pub fn push(&mut self, stream: Stream, mut data: &[u8]) {
        if data.is_empty() {
            return;
        }
        match stream {
            Stream::Stdout | Stream::Merged => self.stdout_bytes += data.len() as u64,
            Stream::Stderr => self.stderr_bytes += data.len() as u64,
        }
        if !self.head_full {
            let continues = self.head_segments.last().is_some_and(|(s, _)| *s == stream);
            let overhead = if continues { 0 } else { SEGMENT_COST };
            let room = self.head_budget.saturating_sub(self.head_used + overhead);
            let take = room.min(data.len());
            if take > 0 {
                if continues {
                    if let Some(last) = self.head_segments.last_mut() {
                        last.1 += take;
                    }
                } else {
                    self.head_segments.push((stream, take));
                }
                self.head.extend_from_slice(&data[..take]);
                self.head_used += take + overhead;
                data = &data[take..];
            }
            if data.is_empty() {
                return;
            }
            self.head_full = true;
        }
        self.tail.push(stream, data);
    }

    /// Reads the next piece of output with `read` and captures it, returning
    /// what was read (for forwarding). Once the head is full, `read` fills
    /// the tail ring directly, so the bulk of a long output is copied once
    /// (by the kernel, as `cat` does) instead of twice; until then it reads
    /// into `scratch` and the piece is copied in.
    pub fn read_from<'a, E>(
        &'a mut self,
        stream: Stream,
        scratch: &'a mut [u8],
        read: impl FnOnce(&mut [u8]) -> Result<usize, E>,
    ) -> Result<&'a [u8], E> {
        if self.head_full && self.tail.can_read_in_place(scratch.len()) {
            let (start, n) = self.tail.read_in_place(stream, scratch.len(), read)?;
            match stream {
                Stream::Stdout | Stream::Merged => self.stdout_bytes += n as u64,
                Stream::Stderr => self.stderr_bytes += n as u64,
            }
            return Ok(&self.tail.buf[start..start + n]);
        }
        let n = read(scratch)?;
        self.push(stream, &scratch[..n]);
        Ok(&scratch[..n])
    }

    /// Total bytes the command wrote.
    pub fn total_bytes(&self) -> u64 {
        self.stdout_bytes + self.stderr_bytes
    }

    /// Bytes kept.
    pub fn kept_bytes(&self) -> u64 {
        (self.head.len() + self.tail.len) as u64
    }

    /// Whether anything was dropped.
    pub fn truncated(&self) -> bool {
        self.kept_bytes() < self.total_bytes()
    }

    /// The kept output in order, with one [`Piece::Omitted`] where bytes were
    /// dropped.
    pub fn pieces(&self) -> Vec<Piece<'_>> {
        let mut out = Vec::new();
        let mut pos = 0;
        for (stream, len) in &self.head_segments {
            out.push(Piece::Data(*stream, &self.head[pos..pos + len]));
            pos += len;
        }
        let omitted = self.total_bytes() - self.kept_bytes();
        if omitted > 0 {
            out.push(Piece::Omitted(omitted));
        }
        self.tail.pieces(&mut out);
        out
    }
}

/// The tail: a fixed-capacity byte ring plus the stream of each segment.
#[derive(Debug)]
struct Ring {
    budget: usize,
    buf: Vec<u8>,
    /// Index of the oldest byte.
    start: usize,
    len: usize,
    segments: VecDeque<(Stream, usize)>,
}

impl Ring {
    fn new(budget: usize) -> Ring {
        Ring {
            budget,
            buf: Vec::new(),
            start: 0,
            len: 0,
            segments: VecDeque::new(),
        }
    }

    fn used(&self) -> usize {
        self.len + self.segments.len() * SEGMENT_COST
    }

    fn push(&mut self, stream: Stream, mut data: &[u8]) {
        if self.budget <= SEGMENT_COST {
            return;
        }
        let max_data = self.budget - SEGMENT_COST;
        if data.len() >= max_data {
            // Only the newest bytes can survive: start over with them.
            data = &data[data.len() - max_data..];
            self.start = 0;
            self.len = 0;
            self.segments.clear();
        }
        let continues = self.segments.back().is_some_and(|(s, _)| *s == stream);
        let needed = data.len() + if continues { 0 } else { SEGMENT_COST };
        self.evict((self.used() + needed).saturating_sub(self.budget));
        match self.segments.back_mut() {
            Some((s, len)) if *s == stream => *len += data.len(),
            _ => {
                // Eviction may have removed the segment we were continuing:
                // the new one must pay for itself.
                if continues {
                    let needed = data.len() + SEGMENT_COST;
                    self.evict((self.used() + needed).saturating_sub(self.budget));
                }
                self.segments.push_back((stream, data.len()));
            }
        }
        self.write(data);
    }

    /// Whether reads of up to `chunk` bytes can go straight into the ring
    /// (it must be large enough to keep a useful tail besides the chunk).
    fn can_read_in_place(&self, chunk: usize) -> bool {
        self.budget >= 4 * (chunk + SEGMENT_COST)
    }

    /// Makes room for up to `chunk` contiguous bytes at the write position,
    /// lets `read` fill them, and records what it read. Returns where the
    /// bytes start in `buf` and how many there are. The room is cleared
    /// before the read, so a short read leaves the tail up to `chunk` bytes
    /// shorter than its budget.
    fn read_in_place<E>(
        &mut self,
        stream: Stream,
        chunk: usize,
        read: impl FnOnce(&mut [u8]) -> Result<usize, E>,
    ) -> Result<(usize, usize), E> {
        let capacity = self.budget - SEGMENT_COST;
        if self.buf.len() < capacity {
            let mut full = Vec::with_capacity(capacity);
            self.copy_out(&mut full);
            full.resize(capacity, 0);
            self.buf = full;
            self.start = 0;
        }
        let end = (self.start + self.len) % capacity;
        let room = chunk.min(capacity - end);
        // Free `room` bytes (and a new segment's cost) at the write position.
        let continues = self.segments.back().is_some_and(|(s, _)| *s == stream);
        let needed = room + if continues { 0 } else { SEGMENT_COST };
        self.evict((self.used() + needed).saturating_sub(self.budget));
        if continues && self.segments.back().is_none_or(|(s, _)| *s != stream) {
            self.evict((self.used() + room + SEGMENT_COST).saturating_sub(self.budget));
        }
        // The ring may have emptied: then writing restarts at `end` anyway.
        if self.len == 0 {
            self.start = end;
        }
        let n = read(&mut self.buf[end..end + room])?;
        if n > 0 {
            match self.segments.back_mut() {
                Some((s, len)) if *s == stream => *len += n,
                _ => self.segments.push_back((stream, n)),
            }
            self.len += n;
        }
        Ok((end, n))
    }

    /// Drops at least `bytes` of budget from the front.
    fn evict(&mut self, mut bytes: usize) {
        while bytes > 0 {
            let Some(&(_, len)) = self.segments.front() else {
                return;
            };
            if len + SEGMENT_COST <= bytes {
                self.segments.pop_front();
                self.drop_front(len);
                bytes -= len + SEGMENT_COST;
            } else {
                let cut = bytes.min(len);
                self.drop_front(cut);
                if cut == len {
                    self.segments.pop_front();
                } else if let Some(front) = self.segments.front_mut() {
                    front.1 -= cut;
                }
                return;
            }
        }
    }

    fn drop_front(&mut self, n: usize) {
        if self.buf.is_empty() {
            return;
        }
        self.start = (self.start + n) % self.buf.len();
        self.len -= n;
    }

    fn write(&mut self, data: &[u8]) {
        let capacity = self.budget - SEGMENT_COST;
        let needed = self.len + data.len();
        if needed > self.buf.len() {
            // Grow lazily (most runs print little), unwrapping the ring.
            let size = capacity.min(needed.max(4096).saturating_mul(2)).max(needed);
            let mut grown = Vec::with_capacity(size);
            self.copy_out(&mut grown);
            grown.resize(size, 0);
            self.buf = grown;
            self.start = 0;
        }
        let cap = self.buf.len();
        let mut end = (self.start + self.len) % cap;
        let mut rest = data;
        while !rest.is_empty() {
            let chunk = rest.len().min(cap - end);
            self.buf[end..end + chunk].copy_from_slice(&rest[..chunk]);
            rest = &rest[chunk..];
            end = (end + chunk) % cap;
        }
        self.len += data.len();
    }

    /// Appends the ring's bytes, oldest first, to `out`.
    fn copy_out(&self, out: &mut Vec<u8>) {
        let (a, b) = self.slices();
        out.extend_from_slice(a);
        out.extend_from_slice(b);
    }

    fn slices(&self) -> (&[u8], &[u8]) {
        if self.len == 0 {
            return (&[], &[]);
        }
        let cap = self.buf.len();
        let first = self.len.min(cap - self.start);
        (
            &self.buf[self.start..self.start + first],
            &self.buf[..self.len - first],
        )
    }

    fn pieces<'a>(&'a self, out: &mut Vec<Piece<'a>>) {
        let (a, b) = self.slices();
        let (mut a, mut b) = (a, b);
        for (stream, len) in &self.segments {
            let mut len = *len;
            // A segment may straddle the wrap point: emit it in two parts.
            while len > 0 {
                if !a.is_empty() {
                    let n = len.min(a.len());
                    out.push(Piece::Data(*stream, &a[..n]));
                    a = &a[n..];
                    len -= n;
                } else {
                    let n = len.min(b.len());
                    out.push(Piece::Data(*stream, &b[..n]));
                    b = &b[n..];
                    len -= n;
                    if n == 0 {
                        break;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Flattens pieces into (stream, bytes) runs merged by stream, plus the
    /// omitted count.
    fn flat(c: &Capture) -> (Vec<(Stream, Vec<u8>)>, u64) {
        let mut out: Vec<(Stream, Vec<u8>)> = Vec::new();
        let mut omitted = 0;
        for p in c.pieces() {
            match p {
                Piece::Data(s, d) => match out.last_mut() {
                    Some((ls, ld)) if *ls == s => ld.extend_from_slice(d),
                    _ => out.push((s, d.to_vec())),
                },
                Piece::Omitted(n) => {
                    omitted += n;
                    out.push((Stream::Stdout, b"<gap>".to_vec()));
                }
            }
        }
        (out, omitted)
    }

    #[test]
    fn small_output_is_kept_whole_and_interleaved() {
        let mut c = Capture::new(1 << 20);
        c.push(Stream::Stdout, b"one\n");
        c.push(Stream::Stderr, b"two\n");
        c.push(Stream::Stdout, b"three\n");
        c.push(Stream::Stdout, b"four\n");
        let (runs, omitted) = flat(&c);
        assert_eq!(omitted, 0);
        assert!(!c.truncated());
        assert_eq!(
            runs,
            vec![
                (Stream::Stdout, b"one\n".to_vec()),
                (Stream::Stderr, b"two\n".to_vec()),
                (Stream::Stdout, b"three\nfour\n".to_vec()),
            ]
        );
    }

    #[test]
    fn long_output_keeps_head_and_tail() {
        let limit = 1000;
        let mut c = Capture::new(limit);
        let mut all = Vec::new();
        for i in 0..10_000u32 {
            let line = format!("line {i}\n");
            all.extend_from_slice(line.as_bytes());
            c.push(Stream::Stdout, line.as_bytes());
        }
        assert!(c.truncated());
        assert_eq!(c.total_bytes(), all.len() as u64);
        let pieces = c.pieces();
        let gap = pieces
            .iter()
            .position(|p| matches!(p, Piece::Omitted(_)))
            .expect("a gap");
        let bytes = |ps: &[Piece<'_>]| -> Vec<u8> {
            ps.iter()
                .flat_map(|p| match p {
                    Piece::Data(_, d) => d.to_vec(),
                    Piece::Omitted(_) => Vec::new(),
                })
                .collect()
        };
        let head = bytes(&pieces[..gap]);
        let tail = bytes(&pieces[gap + 1..]);
        let Piece::Omitted(omitted) = pieces[gap] else {
            unreachable!()
        };
        assert!(all.starts_with(&head));
        assert!(all.ends_with(&tail));
        assert_eq!(
            head.len() as u64 + tail.len() as u64 + omitted,
            all.len() as u64
        );
        assert!(head.len() + tail.len() <= limit);
        assert!(tail.len() > limit / 2 - 2 * SEGMENT_COST);
    }

    #[test]
    fn reading_in_place_matches_pushing() {
        // The same input through read_from (in place once the head is full)
        // and through push gives the same kept bytes, up to the chunk's
        // worth the in-place path may clear early.
        for limit in [4096usize, 10_000, 65_536] {
            let chunk = 256;
            let mut a = Capture::new(limit);
            let mut b = Capture::new(limit);
            let mut all = Vec::new();
            let mut scratch = vec![0u8; chunk];
            for i in 0..2_000usize {
                let stream = if (i / 5) % 2 == 0 {
                    Stream::Stdout
                } else {
                    Stream::Stderr
                };
                let len = 1 + (i * 37) % chunk;
                let data: Vec<u8> = (0..len).map(|j| ((i + j) % 251) as u8).collect();
                all.extend(data.iter().map(|x| (stream, *x)));
                // Like read(2): as much as fits, the rest on the next call.
                let mut pending = &data[..];
                let mut got = Vec::new();
                while !pending.is_empty() {
                    let piece = a
                        .read_from(stream, &mut scratch, |into| -> Result<usize, ()> {
                            let n = into.len().min(pending.len());
                            into[..n].copy_from_slice(&pending[..n]);
                            Ok(n)
                        })
                        .unwrap()
                        .to_vec();
                    pending = &pending[piece.len()..];
                    got.extend(piece);
                }
                assert_eq!(got, data);
                b.push(stream, &data);
            }
            assert_eq!(a.total_bytes(), b.total_bytes());
            type Tagged = Vec<(Stream, u8)>;
            let expand = |c: &Capture| -> (Tagged, Tagged) {
                let (mut head, mut tail, mut gap) = (Vec::new(), Vec::new(), false);
                for p in c.pieces() {
                    match p {
                        Piece::Data(s, d) => {
                            let t = if gap { &mut tail } else { &mut head };
                            t.extend(d.iter().map(|x| (s, *x)));
                        }
                        Piece::Omitted(_) => gap = true,
                    }
                }
                (head, tail)
            };
            let (ha, ta) = expand(&a);
            let (hb, tb) = expand(&b);
            assert_eq!(ha, hb);
            assert!(all.ends_with(&ta) && all.ends_with(&tb));
            assert!(
                ta.len() + chunk + SEGMENT_COST >= tb.len(),
                "{} vs {}",
                ta.len(),
                tb.len()
            );
            assert!(a.tail.used() <= limit - limit / 2);
        }
    }

    #[test]
    fn memory_stays_bounded_under_stream_ping_pong() {
        let limit = 4096;
        let mut c = Capture::new(limit);
        for i in 0..100_000u32 {
            let stream = if i % 2 == 0 {
                Stream::Stdout
            } else {
                Stream::Stderr
            };
            c.push(stream, b"x");
        }
        assert!(c.head_used <= limit / 2);
        assert!(c.tail.used() <= limit - limit / 2);
        assert!(c.tail.buf.len() <= limit);
        // The kept pieces still alternate streams.
        let pieces = c.pieces();
        let streams: Vec<Stream> = pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Data(s, _) => Some(*s),
                Piece::Omitted(_) => None,
            })
            .collect();
        assert!(streams.windows(2).filter(|w| w[0] == w[1]).count() <= 1);
    }

    #[test]
    fn tail_matches_a_naive_model_for_many_chunk_sizes() {
        for limit in [0usize, 40, 100, 333, 4096] {
            for chunk in [1usize, 7, 50, 64, 1000] {
                let mut c = Capture::new(limit);
                let mut all: Vec<(Stream, u8)> = Vec::new();
                for i in 0..400usize {
                    let stream = if (i / 3) % 2 == 0 {
                        Stream::Stdout
                    } else {
                        Stream::Stderr
                    };
                    let data: Vec<u8> = (0..chunk).map(|j| ((i * 31 + j) % 251) as u8).collect();
                    all.extend(data.iter().map(|b| (stream, *b)));
                    c.push(stream, &data);
                }
                // Expand pieces back into (stream, byte) and compare the head
                // and tail with the prefix and suffix of everything written.
                let mut head = Vec::new();
                let mut tail = Vec::new();
                let mut seen_gap = false;
                let mut omitted = 0;
                for p in c.pieces() {
                    match p {
                        Piece::Data(s, d) => {
                            let target = if seen_gap { &mut tail } else { &mut head };
                            target.extend(d.iter().map(|b| (s, *b)));
                        }
                        Piece::Omitted(n) => {
                            seen_gap = true;
                            omitted = n;
                        }
                    }
                }
                assert_eq!(&all[..head.len()], &head[..], "limit {limit} chunk {chunk}");
                assert_eq!(
                    &all[all.len() - tail.len()..],
                    &tail[..],
                    "limit {limit} chunk {chunk}"
                );
                assert_eq!(head.len() + tail.len() + omitted as usize, all.len());
                assert!(head.len() + tail.len() <= limit);
            }
        }
    }
}
