//! The stored form of a run's captured output.
//!
//! stdout and stderr arrive through two pipes; the shim records each piece in
//! the order it read them, tagged with its stream. Each stream's bytes are in
//! the order written; across the two, pieces are in the order the shim read
//! them, which is the order written only when the writes were not close
//! together (two pipes that are both readable cannot tell which was written
//! first). A job that needs the exact order runs with both streams on one
//! pipe (`merge_output`): its pieces are tagged [`Stream::Merged`]. When the
//! output is over the run's limit, the first and the last parts are kept and
//! an [`Segment::Omitted`] marker stands for the middle.
//!
//! Encoding: a sequence of records `tag: u8, length: LEB128 varint, bytes`.
//! Tag 1 = stdout, 2 = stderr, 4 = both on one pipe (each followed by
//! `length` bytes), 3 = omitted (`length` is the number of bytes dropped; no
//! bytes follow). Tag 4 came with `merge_output`: a jobctl from before it
//! reports such an output as malformed rather than guessing.

/// Which stream a piece of output came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
    /// stdout and stderr on one pipe (the job's `merge_output`).
    Merged,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
            Stream::Merged => "merged",
        }
    }

    fn tag(self) -> u8 {
        match self {
            Stream::Stdout => TAG_STDOUT,
            Stream::Stderr => TAG_STDERR,
            Stream::Merged => TAG_MERGED,
        }
    }
}

/// One decoded record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment<'a> {
    Data(Stream, &'a [u8]),
    /// This many bytes were dropped here.
    Omitted(u64),
}

const TAG_STDOUT: u8 = 1;
const TAG_STDERR: u8 = 2;
const TAG_OMITTED: u8 = 3;
const TAG_MERGED: u8 = 4;

/// Builds the encoded form.
#[derive(Debug, Default)]
pub struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    pub fn with_capacity(bytes: usize) -> Encoder {
        Encoder {
            buf: Vec::with_capacity(bytes + 16),
        }
    }

    pub fn data(&mut self, stream: Stream, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.buf.push(stream.tag());
        put_varint(&mut self.buf, bytes.len() as u64);
        self.buf.extend_from_slice(bytes);
    }

    pub fn omitted(&mut self, count: u64) {
        if count == 0 {
            return;
        }
        self.buf.push(TAG_OMITTED);
        put_varint(&mut self.buf, count);
    }

    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// The encoded size of `segments`, without building it.
pub fn encoded_len(segments: &[Segment<'_>]) -> usize {
    segments
        .iter()
        .map(|s| match s {
            Segment::Data(_, []) => 0,
            Segment::Data(_, d) => 1 + varint_len(d.len() as u64) + d.len(),
            Segment::Omitted(0) => 0,
            Segment::Omitted(n) => 1 + varint_len(*n),
        })
        .sum()
}

/// Writes the encoded form of `segments` to `w` (exactly
/// [`encoded_len`] bytes), so a large output can go straight into the
/// database without an intermediate copy.
pub fn write_encoded(w: &mut dyn std::io::Write, segments: &[Segment<'_>]) -> std::io::Result<()> {
    let mut header = Vec::with_capacity(11);
    for seg in segments {
        header.clear();
        match seg {
            Segment::Data(_, []) => continue,
            Segment::Data(stream, d) => {
                header.push(stream.tag());
                put_varint(&mut header, d.len() as u64);
                w.write_all(&header)?;
                w.write_all(d)?;
            }
            Segment::Omitted(0) => continue,
            Segment::Omitted(n) => {
                header.push(TAG_OMITTED);
                put_varint(&mut header, *n);
                w.write_all(&header)?;
            }
        }
    }
    Ok(())
}

fn varint_len(mut value: u64) -> usize {
    let mut n = 1;
    while value >= 0x80 {
        value >>= 7;
        n += 1;
    }
    n
}

fn put_varint(buf: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            buf.push(byte);
            return;
        }
        buf.push(byte | 0x80);
    }
}

fn get_varint(data: &[u8], pos: &mut usize) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *data.get(*pos).ok_or("truncated length")?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("length too long".into())
}

/// Decodes a stored output. Fails on malformed data rather than guessing.
pub fn decode(data: &[u8]) -> Result<Vec<Segment<'_>>, String> {
    let mut pos = 0;
    let mut out = Vec::new();
    while pos < data.len() {
        let tag = data[pos];
        pos += 1;
        let len = get_varint(data, &mut pos)?;
        match tag {
            TAG_STDOUT | TAG_STDERR | TAG_MERGED => {
                let len = usize::try_from(len).map_err(|_| "length too large")?;
                let end = pos.checked_add(len).filter(|&e| e <= data.len());
                let end = end.ok_or_else(|| format!("record at {pos} runs past the end"))?;
                let stream = match tag {
                    TAG_STDOUT => Stream::Stdout,
                    TAG_STDERR => Stream::Stderr,
                    _ => Stream::Merged,
                };
                out.push(Segment::Data(stream, &data[pos..end]));
                pos = end;
            }
            TAG_OMITTED => out.push(Segment::Omitted(len)),
            other => return Err(format!("unknown record tag {other} at byte {}", pos - 1)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let mut enc = Encoder::default();
        enc.data(Stream::Stdout, b"hello\n");
        enc.data(Stream::Stderr, &[0u8; 300]);
        enc.omitted(1 << 40);
        enc.data(Stream::Stdout, b"");
        enc.data(Stream::Stdout, b"bye");
        enc.data(Stream::Merged, b"both\n");
        let data = enc.finish();
        let segs = decode(&data).unwrap();
        assert_eq!(
            segs,
            vec![
                Segment::Data(Stream::Stdout, b"hello\n"),
                Segment::Data(Stream::Stderr, &[0u8; 300]),
                Segment::Omitted(1 << 40),
                Segment::Data(Stream::Stdout, b"bye"),
                Segment::Data(Stream::Merged, b"both\n"),
            ]
        );
        // write_encoded writes exactly what the encoder builds.
        let mut streamed = Vec::new();
        write_encoded(&mut streamed, &segs).unwrap();
        assert_eq!(streamed, data);
        assert_eq!(encoded_len(&segs), data.len());
    }

    #[test]
    fn streaming_matches_the_encoder() {
        let big = vec![7u8; 70_000];
        let segs = [
            Segment::Data(Stream::Stdout, b"a"),
            Segment::Data(Stream::Stderr, &big),
            Segment::Omitted(300),
            Segment::Data(Stream::Stdout, b""),
            Segment::Omitted(0),
        ];
        let mut enc = Encoder::default();
        for s in &segs {
            match s {
                Segment::Data(st, d) => enc.data(*st, d),
                Segment::Omitted(n) => enc.omitted(*n),
            }
        }
        let expected = enc.finish();
        let mut streamed = Vec::new();
        write_encoded(&mut streamed, &segs).unwrap();
        assert_eq!(streamed, expected);
        assert_eq!(encoded_len(&segs), expected.len());
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        assert!(decode(&[9, 0]).is_err());
        assert!(decode(&[1, 5, b'a']).is_err());
        assert!(decode(&[1]).is_err());
        assert!(
            decode(&[
                1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01
            ])
            .is_err()
        );
        // Every short byte string decodes or fails cleanly.
        for a in 0..=255u8 {
            for b in [0u8, 1, 0x7f, 0x80, 0xff] {
                let _ = decode(&[a, b]);
                let _ = decode(&[a, b, a]);
            }
        }
    }
}
