//! Request bodies deflated once at start and sent many times with different ids and times, so
//! that a load generator sends realistically compressed payloads without compressing per
//! request.
//!
//! Deflating text as real as the payloads costs far more than sending it (about 30 MB/s at the
//! fastest level on the benchmark machine, contended): per request it would take the cores the
//! server is measured on. What changes between requests is a few fixed-length holes (ids, times)
//! in a body that is otherwise the same, so the body is deflated once as a whole, as an exporter
//! would, with each hole filled with placeholder bytes and cut out by sync flushes: the deflated
//! data between two holes is kept, and per request each hole is written as a stored block of its
//! real bytes. Nothing after a hole can refer back into it, because the placeholders are chosen
//! so that every 3-byte sequence that overlaps one occurs nowhere else in the body (deflate's
//! shortest match is 3 bytes); the CRC-32 of the gzip trailer is combined from the runs' own.
//!
//! The price of the cuts is a deflate block boundary at every hole (a new Huffman table each),
//! a few percent over deflating the body in one go; the generators' `--describe` shows both.

use std::io::Write;

use flate2::{Compression, Crc};

use super::prose::Rng;

/// A part of a body: bytes that are the same in every request, or a hole of that many bytes
/// filled per request.
pub enum Segment {
    Constant(Vec<u8>),
    Hole(usize),
}

/// A run of constant bytes, deflated, followed by a hole (except after the last run).
struct Run {
    raw: Vec<u8>,
    deflated: Vec<u8>,
    crc: Crc,
    /// Length of the hole after this run; 0 after the last.
    hole: usize,
}

pub struct Template {
    runs: Vec<Run>,
    raw_len: usize,
}

/// Deflate level: zlib's default, what most SDKs and exporters that compress use.
const LEVEL: u32 = 6;

impl Template {
    pub fn new(segments: Vec<Segment>) -> Template {
        // Constant runs (adjacent constants joined) and the holes between them.
        let mut runs: Vec<(Vec<u8>, usize)> = vec![(Vec::new(), 0)];
        for segment in segments {
            match segment {
                Segment::Constant(bytes) => {
                    if runs.last().is_some_and(|(_, hole)| *hole > 0) {
                        runs.push((Vec::new(), 0));
                    }
                    runs.last_mut().expect("a run").0.extend_from_slice(&bytes);
                }
                Segment::Hole(0) => {}
                Segment::Hole(len) => {
                    if runs.last().is_some_and(|(_, hole)| *hole > 0) {
                        runs.push((Vec::new(), 0));
                    }
                    runs.last_mut().expect("a run").1 = len;
                }
            }
        }
        if runs.last().is_some_and(|(_, hole)| *hole > 0) {
            runs.push((Vec::new(), 0));
        }

        let placeholders = placeholders(&runs);
        let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), Compression::new(LEVEL));
        let mut template = Template {
            runs: Vec::with_capacity(runs.len()),
            raw_len: 0,
        };
        for ((raw, hole), placeholder) in runs.into_iter().zip(placeholders) {
            let start = encoder.get_ref().len();
            encoder.write_all(&raw).expect("deflating into memory");
            // A sync flush ends the block and aligns the output to a byte; later blocks may
            // still refer to these bytes.
            encoder.flush().expect("deflating into memory");
            let deflated = encoder.get_ref()[start..].to_vec();
            if hole > 0 {
                encoder
                    .write_all(&placeholder)
                    .expect("deflating into memory");
                encoder.flush().expect("deflating into memory");
            }
            let mut crc = Crc::new();
            crc.update(&raw);
            template.raw_len += raw.len() + hole;
            template.runs.push(Run {
                raw,
                deflated,
                crc,
                hole,
            });
        }
        template
    }

    /// The body's length uncompressed.
    pub fn raw_len(&self) -> usize {
        self.raw_len
    }

    /// The body with its holes filled in order by `fill`, which appends exactly the hole's
    /// length of bytes for the hole of that index (0, 1, ... in body order); gzip-compressed or
    /// as it is.
    pub fn write(&self, gzip: bool, mut fill: impl FnMut(usize, &mut Vec<u8>)) -> Vec<u8> {
        let mut hole = Vec::with_capacity(256);
        if !gzip {
            let mut out = Vec::with_capacity(self.raw_len);
            let mut i = 0;
            for run in &self.runs {
                out.extend_from_slice(&run.raw);
                if run.hole > 0 {
                    let before = out.len();
                    fill(i, &mut out);
                    assert_eq!(out.len() - before, run.hole, "hole {i} filled wrongly");
                    i += 1;
                }
            }
            return out;
        }
        let deflated: usize = self
            .runs
            .iter()
            .map(|r| r.deflated.len() + r.hole + 5)
            .sum();
        let mut out = Vec::with_capacity(deflated + 32);
        // Magic, deflate, no flags, no time, no extra flags, unknown OS.
        out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
        let mut crc = Crc::new();
        let mut i = 0;
        for run in &self.runs {
            out.extend_from_slice(&run.deflated);
            crc.combine(&run.crc);
            if run.hole > 0 {
                hole.clear();
                fill(i, &mut hole);
                assert_eq!(hole.len(), run.hole, "hole {i} filled wrongly");
                stored_block(&mut out, &hole, false);
                crc.update(&hole);
                i += 1;
            }
        }
        stored_block(&mut out, &[], true);
        out.extend_from_slice(&crc.sum().to_le_bytes());
        out.extend_from_slice(&crc.amount().to_le_bytes());
        out
    }
}

/// A stored (uncompressed) deflate block; the output is byte-aligned before it.
fn stored_block(out: &mut Vec<u8>, block: &[u8], last: bool) {
    assert!(block.len() <= u16::MAX as usize);
    let len = block.len() as u16;
    // BFINAL and BTYPE=00 in the low bits, then padding to the byte.
    out.push(u8::from(last));
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(!len).to_le_bytes());
    out.extend_from_slice(block);
}

/// Bytes for each run's hole such that every 3-byte window of the body that overlaps a hole
/// occurs once in it. Chosen byte by byte: a window is checked against all windows seen when
/// its last byte is chosen.
fn placeholders(runs: &[(Vec<u8>, usize)]) -> Vec<Vec<u8>> {
    // The body, with each byte's hole (if it is in one).
    let mut body: Vec<u8> = Vec::new();
    let mut in_hole: Vec<bool> = Vec::new();
    for (raw, hole) in runs {
        body.extend_from_slice(raw);
        in_hole.extend(std::iter::repeat_n(false, raw.len()));
        body.extend(std::iter::repeat_n(0, *hole));
        in_hole.extend(std::iter::repeat_n(true, *hole));
    }
    let key = |w: &[u8]| ((w[0] as usize) << 16) | ((w[1] as usize) << 8) | w[2] as usize;
    let mut seen = vec![0u64; (1 << 24) / 64];
    let is_seen = |seen: &[u64], k: usize| seen[k / 64] & (1 << (k % 64)) != 0;
    let mark = |seen: &mut [u64], k: usize| seen[k / 64] |= 1 << (k % 64);
    for (start, window) in body.windows(3).enumerate() {
        if !in_hole[start..start + 3].iter().any(|h| *h) {
            mark(&mut seen, key(window));
        }
    }
    let mut rng = Rng::new(0x5eed);
    for p in 0..body.len() {
        if !in_hole[p] {
            continue;
        }
        // Windows complete once this byte is chosen: those that end here, and those past a
        // hole's end whose other bytes are constant.
        let complete: Vec<usize> = (p.saturating_sub(2)..=p)
            .filter(|&s| s + 3 <= body.len())
            .filter(|&s| (s..s + 3).all(|q| q <= p || !in_hole[q]))
            .collect();
        let mut tries = 0;
        loop {
            body[p] = rng.next_u64() as u8;
            let keys: Vec<usize> = complete.iter().map(|&s| key(&body[s..s + 3])).collect();
            let distinct = keys
                .iter()
                .enumerate()
                .all(|(i, k)| !is_seen(&seen, *k) && !keys[..i].contains(k));
            if distinct {
                for k in keys {
                    mark(&mut seen, k);
                }
                break;
            }
            tries += 1;
            assert!(tries < 10_000, "no placeholder byte fits");
        }
    }
    let mut offset = 0;
    runs.iter()
        .map(|(raw, hole)| {
            offset += raw.len();
            let placeholder = body[offset..offset + hole].to_vec();
            offset += hole;
            placeholder
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzip(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(body)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    /// Holes between and around repetitive constant runs, filled with bytes that repeat what is
    /// around them (the worst case for a hole that something could refer back into).
    #[test]
    fn gzip_bodies_inflate_to_the_plain_ones_whatever_fills_the_holes() {
        let text = b"the same words again and again, the same words again".repeat(20);
        let segments = vec![
            Segment::Hole(4),
            Segment::Constant(text.clone()),
            Segment::Hole(16),
            Segment::Constant(b"ab".to_vec()),
            Segment::Hole(8),
            Segment::Constant(text.clone()),
            Segment::Hole(3),
        ];
        let template = Template::new(segments);
        let fill = |fill_byte: u8| {
            let text = text.clone();
            move |hole: usize, out: &mut Vec<u8>| {
                let len = [4, 16, 8, 3][hole];
                match fill_byte {
                    0 => out.extend_from_slice(&text[..len]),
                    b => out.extend(std::iter::repeat_n(b, len)),
                }
            }
        };
        for fill_byte in [b'a', b's', 0] {
            let plain = template.write(false, fill(fill_byte));
            let gzip = template.write(true, fill(fill_byte));
            assert_eq!(plain.len(), template.raw_len());
            assert_eq!(gunzip(&gzip), plain);
            assert!(gzip.len() < plain.len() / 5);
        }
    }

    #[test]
    fn a_body_without_holes_is_one_run() {
        let template = Template::new(vec![Segment::Constant(b"hello".to_vec())]);
        let body = template.write(true, |_, _| unreachable!());
        assert_eq!(gunzip(&body), b"hello");
        let empty = Template::new(Vec::new());
        assert!(gunzip(&empty.write(true, |_, _| {})).is_empty());
    }
}
