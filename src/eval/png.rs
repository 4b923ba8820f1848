//! A PNG encoder for 8-bit RGB images, std only: Up-filtered scanlines, zlib with an LZ77 +
//! fixed-Huffman deflate stream, CRC-32 and Adler-32 checksums.

/// CRC-32 (IEEE, reflected 0xEDB88320) lookup table, built at compile time.
const CRC_TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let (mut i, mut n) = (0usize, 0u32);
    while i < 256 {
        let mut c = n;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
        n += 1;
    }
    t
};

/// CRC-32 as used by PNG chunks.
fn crc32(data: &[u8]) -> u32 {
    !data
        .iter()
        .fold(!0u32, |c, &b| CRC_TABLE[usize::from(c.to_le_bytes()[0] ^ b)] ^ (c >> 8))
}

/// Adler-32 checksum as used by zlib.
fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5552) {
        for &x in chunk {
            a += u32::from(x);
            b += a;
        }
        a %= 65521;
        b %= 65521;
    }
    (b << 16) | a
}

/// Deflate window: the largest distance a match may reach back.
const WINDOW: usize = 1 << 15;
/// Number of hash buckets for 3-byte prefixes.
const HASH_SIZE: usize = 1 << 15;
/// Most hash-chain candidates compared when looking for a match.
const MAX_CHAIN: usize = 96;
/// Matches shorter than this are compared with the match at the next byte (lazy matching).
const LAZY_LEN: usize = 32;
/// Longest deflate match.
const MAX_MATCH: usize = 258;
/// Length codes 257..=285: (base length, extra bits), RFC 1951 section 3.2.5.
#[rustfmt::skip]
const LENGTHS: [(u32, u32); 29] = [
    (3, 0), (4, 0), (5, 0), (6, 0), (7, 0), (8, 0), (9, 0), (10, 0), (11, 1), (13, 1), (15, 1), (17, 1), (19, 2),
    (23, 2), (27, 2), (31, 2), (35, 3), (43, 3), (51, 3), (59, 3), (67, 4), (83, 4), (99, 4), (115, 4), (131, 5),
    (163, 5), (195, 5), (227, 5), (258, 0),
];
/// Distance codes 0..=29: (base distance, extra bits), RFC 1951 section 3.2.5.
#[rustfmt::skip]
const DISTANCES: [(u32, u32); 30] = [
    (1, 0), (2, 0), (3, 0), (4, 0), (5, 1), (7, 1), (9, 2), (13, 2), (17, 3), (25, 3), (33, 4), (49, 4), (65, 5),
    (97, 5), (129, 6), (193, 6), (257, 7), (385, 7), (513, 8), (769, 8), (1025, 9), (1537, 9), (2049, 10),
    (3073, 10), (4097, 11), (6145, 11), (8193, 12), (12289, 12), (16385, 13), (24577, 13),
];

/// Index, base and extra-bit count of the last `table` entry whose base is at most `v`.
fn bucket(table: &[(u32, u32)], v: u32) -> (u32, u32, u32) {
    let i = table.iter().rposition(|&(base, _)| base <= v).unwrap_or(0);
    let (base, extra) = table.get(i).copied().unwrap_or((v, 0));
    (u32::try_from(i).unwrap_or(0), base, extra)
}

/// Deflate bit packer: values go in least significant bit first, Huffman codes most significant bit first.
struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl BitWriter {
    /// Appends the low `n` (at most 32) bits of `v`.
    fn bits(&mut self, v: u32, n: u32) {
        self.acc |= (u64::from(v) & ((1u64 << n) - 1)) << self.n;
        self.n += n;
        while self.n >= 8 {
            self.out.push(self.acc.to_le_bytes()[0]);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    /// Appends a `len`-bit (1 to 32) Huffman code, most significant bit first.
    fn code(&mut self, code: u32, len: u32) {
        self.bits(code.reverse_bits() >> (32 - len), len);
    }

    /// Appends literal/length symbol `sym` (0..=287) with the fixed Huffman code of RFC 1951 section 3.2.6.
    fn symbol(&mut self, sym: u32) {
        let (code, len) = match sym {
            0..=143 => (0x30 + sym, 8),
            144..=255 => (0x190 + sym - 144, 9),
            256..=279 => (sym - 256, 7),
            _ => (0xC0 + (sym - 280).min(7), 8),
        };
        self.code(code, len);
    }

    /// Appends a match of `len` (3..=258) bytes at distance `dist` (1..=32768).
    fn pair(&mut self, len: usize, dist: usize) {
        let (len, dist) = (u32::try_from(len).unwrap_or(3), u32::try_from(dist).unwrap_or(1));
        let (i, base, extra) = bucket(&LENGTHS, len);
        self.symbol(257 + i);
        self.bits(len.saturating_sub(base), extra);
        let (i, base, extra) = bucket(&DISTANCES, dist);
        self.code(i, 5);
        self.bits(dist.saturating_sub(base), extra);
    }

    /// Flushes the last partial byte and returns the bytes written.
    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push(self.acc.to_le_bytes()[0]);
        }
        self.out
    }
}

/// Length of the common prefix of `a` and `b`, comparing 16-byte blocks as slices first (fast even unoptimised).
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut i = 0;
    while i + 16 <= n && a[i..i + 16] == b[i..i + 16] {
        i += 16;
    }
    i + a[i..].iter().zip(&b[i..]).take_while(|(x, y)| x == y).count()
}

/// LZ77 match finder: hash chains over 3-byte prefixes within the last `WINDOW` bytes.
struct Matcher<'a> {
    data: &'a [u8],
    /// Most recent position per hash bucket (`usize::MAX` if none).
    head: Vec<usize>,
    /// Previous position with the same hash, indexed by position modulo `WINDOW`.
    prev: Vec<usize>,
}

impl<'a> Matcher<'a> {
    /// A matcher over `data` with empty hash chains.
    fn new(data: &'a [u8]) -> Self {
        Matcher {
            data,
            head: vec![usize::MAX; HASH_SIZE],
            prev: vec![usize::MAX; WINDOW],
        }
    }

    /// Hash bucket of the 3 bytes at `pos`, if there are 3 bytes left.
    fn hash(&self, pos: usize) -> Option<usize> {
        let b = self.data.get(pos..pos.checked_add(3)?)?;
        let h = u32::from_le_bytes([b[0], b[1], b[2], 0]).wrapping_mul(0x9E37_79B1) >> 17;
        Some(usize::try_from(h).unwrap_or(0) % HASH_SIZE)
    }

    /// Records `pos` in its hash chain.
    fn insert(&mut self, pos: usize) {
        if let Some(h) = self.hash(pos) {
            self.prev[pos % WINDOW] = self.head[h];
            self.head[h] = pos;
        }
    }

    /// Longest earlier match for the bytes at `pos` as (length, distance), or (0, 0) if none is worth coding.
    /// Only positions inserted so far are considered; every candidate is verified byte by byte.
    fn find(&self, pos: usize) -> (usize, usize) {
        let max = self.data.len().saturating_sub(pos).min(MAX_MATCH);
        let (Some(h), Some(cur)) = (self.hash(pos), self.data.get(pos..pos + max)) else {
            return (0, 0);
        };
        let (mut cand, mut best, mut dist) = (self.head[h], 0, 0);
        for _ in 0..MAX_CHAIN {
            if cand >= pos || pos - cand > WINDOW {
                break;
            }
            let prior = &self.data[cand..];
            if prior.get(best) == cur.get(best) {
                let len = common_prefix(prior, cur);
                if len > best {
                    (best, dist) = (len, pos - cand);
                    if len == max {
                        break;
                    }
                }
            }
            let next = self.prev[cand % WINDOW];
            if next >= cand {
                break;
            }
            cand = next;
        }
        // A 3-byte match far back costs about as much as three literals.
        if best < 3 || (best == 3 && dist > 4096) {
            (0, 0)
        } else {
            (best, dist)
        }
    }
}

/// Raw deflate stream: one final block with fixed Huffman codes (BTYPE 01) over LZ77 matches, lazy matching.
fn deflate_fixed(data: &[u8]) -> Vec<u8> {
    let mut w = BitWriter {
        out: Vec::with_capacity(data.len() / 16 + 64),
        acc: 0,
        n: 0,
    };
    w.bits(1, 1);
    w.bits(1, 2);
    let mut m = Matcher::new(data);
    let (mut pos, mut pending) = (0, None);
    while let Some(&byte) = data.get(pos) {
        let (len, dist) = pending.take().unwrap_or_else(|| m.find(pos));
        m.insert(pos);
        if len == 0 {
            w.symbol(u32::from(byte));
            pos += 1;
            continue;
        }
        if len < LAZY_LEN {
            let next = m.find(pos + 1);
            if next.0 > len {
                w.symbol(u32::from(byte));
                pending = Some(next);
                pos += 1;
                continue;
            }
        }
        w.pair(len, dist);
        // The inside of a maximal match is a long run (mostly zeros after the Up filter): indexing it would only
        // add duplicate candidates, so just its last bytes go into the hash chains.
        let from = if len == MAX_MATCH { pos + len - 3 } else { pos + 1 };
        for p in from..pos + len {
            m.insert(p);
        }
        pos += len;
    }
    w.symbol(256);
    w.finish()
}

/// zlib stream (RFC 1950): header, fixed-Huffman deflate data, Adler-32 of the uncompressed data.
fn zlib_compress(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x9C];
    out.extend(deflate_fixed(data));
    out.extend(adler32(data).to_be_bytes());
    out
}

/// Appends one PNG chunk (length, type, data, CRC over type + data).
fn chunk(out: &mut Vec<u8>, kind: [u8; 4], data: &[u8]) {
    out.extend(u32::try_from(data.len()).unwrap_or(u32::MAX).to_be_bytes());
    let start = out.len();
    out.extend(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend(crc.to_be_bytes());
}

/// Encodes `pixels` (row-major RGB, `width * height * 3` bytes) as an 8-bit RGB PNG. Every scanline uses filter type 2 (Up: each byte minus the one above it);
/// charts are mostly flat colour, so repeated rows become runs of zeros that the LZ77 stage codes cheaply.
pub fn encode_rgb(width: u32, height: u32, pixels: &[u8]) -> Vec<u8> {
    let stride = usize::try_from(width).unwrap_or(0) * 3;
    let mut raw = Vec::with_capacity(pixels.len() + usize::try_from(height).unwrap_or(0));
    let mut prev: &[u8] = &[];
    for row in pixels.chunks(stride.max(1)) {
        raw.push(2);
        if row == prev {
            raw.resize(raw.len() + row.len(), 0);
        } else {
            raw.extend(
                row.iter()
                    .zip(prev.iter().chain(std::iter::repeat(&0)))
                    .map(|(&x, &up)| x.wrapping_sub(up)),
            );
        }
        prev = row;
    }
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    let mut out = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    chunk(&mut out, *b"IHDR", &ihdr);
    chunk(&mut out, *b"IDAT", &zlib_compress(&raw));
    chunk(&mut out, *b"IEND", &[]);
    out
}

/// Test-only decoding (fixed-Huffman inflate, PNG parsing), shared with the chart tests.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod testing {
    use super::*;

    /// Test bit reader: bits least significant first within each byte.
    struct Bits<'a> {
        data: &'a [u8],
        pos: usize,
    }

    impl Bits<'_> {
        fn bit(&mut self) -> u32 {
            let b = (self.data[self.pos / 8] >> (self.pos % 8)) & 1;
            self.pos += 1;
            u32::from(b)
        }

        /// `n`-bit value, least significant bit first (extra bits, header fields).
        fn bits(&mut self, n: u32) -> u32 {
            (0..n).fold(0, |v, i| v | self.bit() << i)
        }

        /// `n`-bit Huffman code, most significant bit first.
        fn code(&mut self, n: u32) -> u32 {
            (0..n).fold(0, |v, _| v << 1 | self.bit())
        }
    }

    /// Inflates a raw deflate stream that must consist of fixed-Huffman blocks only; returns the data and the
    /// number of bytes consumed (up to the end of the byte holding the last bit).
    fn inflate_fixed(data: &[u8]) -> (Vec<u8>, usize) {
        let (mut r, mut out) = (Bits { data, pos: 0 }, Vec::new());
        loop {
            let last = r.bits(1);
            assert_eq!(r.bits(2), 1, "fixed Huffman block expected");
            loop {
                let c = r.code(7);
                let sym = if c <= 0x17 {
                    c + 256
                } else {
                    let c = c << 1 | r.bit();
                    match c {
                        0x30..=0xBF => c - 0x30,
                        0xC0..=0xC7 => c - 0xC0 + 280,
                        _ => (c << 1 | r.bit()) - 0x190 + 144,
                    }
                };
                match sym {
                    0..=255 => out.push(u8::try_from(sym).unwrap()),
                    256 => break,
                    257..=285 => {
                        let (base, extra) = LENGTHS[usize::try_from(sym - 257).unwrap()];
                        let len = base + r.bits(extra);
                        let d = usize::try_from(r.code(5)).unwrap();
                        assert!(d < 30, "invalid distance code {d}");
                        let (base, extra) = DISTANCES[d];
                        let dist = usize::try_from(base + r.bits(extra)).unwrap();
                        assert!(
                            (1..=out.len().min(WINDOW)).contains(&dist),
                            "distance {dist} out of range"
                        );
                        for _ in 0..len {
                            out.push(out[out.len() - dist]);
                        }
                    }
                    _ => panic!("invalid literal/length symbol {sym}"),
                }
            }
            if last == 1 {
                break;
            }
        }
        (out, r.pos.div_ceil(8))
    }

    /// Decodes a zlib stream produced by `zlib_compress`: header, fixed-Huffman deflate data, Adler-32.
    pub(crate) fn unzlib(z: &[u8]) -> Vec<u8> {
        assert_eq!(z[0] & 0x0F, 8, "deflate method");
        assert_eq!((u16::from(z[0]) << 8 | u16::from(z[1])) % 31, 0, "header check bits");
        assert_eq!(z[1] & 0x20, 0, "no preset dictionary");
        let (raw, used) = inflate_fixed(&z[2..]);
        assert_eq!(z.len(), 2 + used + 4, "trailing bytes after the Adler-32");
        assert_eq!(u32::from_be_bytes(z[2 + used..].try_into().unwrap()), adler32(&raw));
        raw
    }

    /// Parses a PNG produced by this module: checks signature, chunk order and CRCs, inflates the IDAT data,
    /// checks Adler-32 and scanline layout and undoes the filters; returns (width, height, RGB pixels).
    pub(crate) fn decode(png: &[u8]) -> (u32, u32, Vec<u8>) {
        assert_eq!(&png[..8], &[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        let (mut pos, mut kinds, mut ihdr, mut idat) = (8, Vec::new(), Vec::new(), Vec::new());
        while pos < png.len() {
            let len = usize::try_from(u32::from_be_bytes(png[pos..pos + 4].try_into().unwrap())).unwrap();
            let body = &png[pos + 4..pos + 8 + len];
            let crc = u32::from_be_bytes(png[pos + 8 + len..pos + 12 + len].try_into().unwrap());
            assert_eq!(crc, crc32(body));
            kinds.push(String::from_utf8(body[..4].to_vec()).unwrap());
            match &body[..4] {
                b"IHDR" => ihdr = body[4..].to_vec(),
                b"IDAT" => idat.extend_from_slice(&body[4..]),
                _ => {}
            }
            pos += 12 + len;
        }
        assert_eq!(pos, png.len());
        assert_eq!(kinds, ["IHDR", "IDAT", "IEND"]);
        assert_eq!(ihdr.len(), 13);
        assert_eq!(&ihdr[8..], &[8, 2, 0, 0, 0]);
        let w = u32::from_be_bytes(ihdr[..4].try_into().unwrap());
        let h = u32::from_be_bytes(ihdr[4..8].try_into().unwrap());
        let raw = unzlib(&idat);
        let stride = 3 * usize::try_from(w).unwrap();
        assert_eq!(raw.len(), usize::try_from(h).unwrap() * (stride + 1));
        let mut px: Vec<u8> = Vec::with_capacity(raw.len());
        for (y, line) in raw.chunks(stride + 1).enumerate() {
            for (i, &b) in line[1..].iter().enumerate() {
                let pred = match line[0] {
                    0 => 0,
                    1 => i.checked_sub(3).map_or(0, |j| px[y * stride + j]),
                    2 => y.checked_sub(1).map_or(0, |py| px[py * stride + i]),
                    f => panic!("unexpected filter type {f}"),
                };
                px.push(b.wrapping_add(pred));
            }
        }
        (w, h, px)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::testing::unzlib;
    use super::*;

    /// Deterministic pseudo-random bytes (64-bit LCG, high byte).
    fn noise(n: usize, seed: u64) -> Vec<u8> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                s.to_be_bytes()[0]
            })
            .collect()
    }

    #[test]
    fn checksums() {
        assert_eq!(crc32(b"IEND"), 0xAE42_6082);
        assert_eq!(crc32(b""), 0);
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
        assert_eq!(adler32(b""), 1);
        let big = vec![0xFFu8; 200_000];
        let naive = big.iter().fold((1u64, 0u64), |(a, b), &x| {
            ((a + u64::from(x)) % 65521, (b + a + u64::from(x)) % 65521)
        });
        assert_eq!(u64::from(adler32(&big)), naive.1 << 16 | naive.0);
    }

    #[test]
    fn code_tables_follow_rfc1951() {
        for t in [&LENGTHS[..28], &DISTANCES[..]] {
            for (a, b) in t.iter().zip(&t[1..]) {
                assert_eq!(a.0 + (1 << a.1), b.0, "{a:?} {b:?}");
            }
        }
        assert_eq!(
            (LENGTHS[0], LENGTHS[27].0 + (1 << LENGTHS[27].1) - 2, LENGTHS[28]),
            ((3, 0), 257, (258, 0))
        );
        assert_eq!(
            (DISTANCES[0], DISTANCES[29].0 + (1 << DISTANCES[29].1) - 1),
            ((1, 0), 32768)
        );
        assert_eq!(bucket(&LENGTHS, 258), (28, 258, 0));
        assert_eq!(bucket(&LENGTHS, 257), (27, 227, 5));
        assert_eq!(bucket(&DISTANCES, 32768), (29, 24577, 13));
    }

    #[test]
    fn zlib_matches_reference_bytes() {
        // The same bytes as Python's zlib.compress (which also picks a fixed-Huffman block for these inputs).
        assert_eq!(zlib_compress(b""), [0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
        assert_eq!(
            zlib_compress(b"a"),
            [0x78, 0x9C, 0x4B, 0x04, 0x00, 0x00, 0x62, 0x00, 0x62]
        );
        // Literal 0, then one match of length 99 (code 279, extra 0) at distance 1 (code 0); checked with
        // Python's zlib.decompress.
        assert_eq!(
            zlib_compress(&[0; 100]),
            [0x78, 0x9C, 0x63, 0xA0, 0x03, 0x00, 0x00, 0x00, 0x64, 0x00, 0x01]
        );
    }

    #[test]
    fn deflate_round_trip() {
        let mut inputs: Vec<Vec<u8>> = vec![
            Vec::new(),
            vec![7],
            b"ab".to_vec(),
            b"abcabcabcabcabcabcabcabcabc".to_vec(),
            (0..=255).collect(),
            vec![255; 100_000],
            (0..70_000u32).map(|i| u8::try_from(i % 251).unwrap()).collect(),
            noise(50_000, 1),
        ];
        // Matches near the window limit: a random block, filler, then the block again.
        let mut far = noise(40_000, 2);
        far.extend_from_within(..5000);
        let mut edge = noise(WINDOW + 300, 3);
        edge.extend_from_within(..300);
        let mut runs = noise(2000, 4);
        for (i, b) in noise(400, 5).into_iter().enumerate() {
            runs.extend(std::iter::repeat_n(b, i % 300 + 1));
        }
        inputs.extend([far, edge, runs]);
        inputs.extend((0..40).map(|n| noise(n, 6).iter().map(|b| b % 3).collect()));
        for data in &inputs {
            let z = zlib_compress(data);
            assert_eq!(unzlib(&z), *data, "length {}", data.len());
            assert_eq!(z, zlib_compress(data), "not deterministic");
        }
        assert!(zlib_compress(&inputs[5]).len() < 1000);
        assert!(zlib_compress(&inputs[7]).len() < 50_000 * 9 / 8 + 20);
    }
}
